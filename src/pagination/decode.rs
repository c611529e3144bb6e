//! Decoding a page straight from its bytes.
//!
//! One pass over the body decodes the items at their JSON pointer into `Vec<T>` (only those
//! kept; the others are skipped without being built) and borrows the few other values the
//! walk and the strategy read (total, cursor, next URL) as raw JSON. No `serde_json::Value`
//! tree is built: a page costs its bytes plus the items it yields.

use std::{borrow::Cow, fmt, marker::PhantomData};

use serde::de::{
    self, Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess,
    SeqAccess, Visitor,
};
use serde_json::value::RawValue;

// ===== Pointer =====

/// A JSON pointer (RFC 6901), split into its unescaped reference tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pointer {
    tokens: Vec<String>,
}

impl Pointer {
    /// Parses `""` (the whole document) or `"/a/b~1c"`; `None` for anything else.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let tokens = if text.is_empty() {
            Vec::new()
        } else {
            text.strip_prefix('/')?
                .split('/')
                .map(|token| token.replace("~1", "/").replace("~0", "~"))
                .collect()
        };
        Some(Self { tokens })
    }
}

// ===== Plan =====

/// What one pass over a page extracts: the items (at most one pointer) and raw values.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    root: Node,
    raw_count: usize,
}

#[derive(Debug, Default)]
struct Node {
    token: String,
    children: Vec<Node>,
    items: bool,
    raws: Vec<usize>,
}

impl Plan {
    /// A plan for the items at `items` (the whole body when `None`) and the raw values at
    /// `raws`, which [`Extracted::raw`] returns by their index in that slice.
    pub(crate) fn new(items: Option<&Pointer>, raws: &[&Pointer]) -> Self {
        let mut plan = Self {
            root: Node::default(),
            raw_count: raws.len(),
        };
        plan.node(items.map_or(&[][..], |p| &p.tokens[..])).items = true;
        for (i, pointer) in raws.iter().enumerate() {
            plan.node(&pointer.tokens).raws.push(i);
        }
        plan
    }

    /// A plan for one raw value and no items.
    pub(crate) fn raw(pointer: &Pointer) -> Self {
        let mut plan = Self {
            root: Node::default(),
            raw_count: 1,
        };
        plan.node(&pointer.tokens).raws.push(0);
        plan
    }

    fn node(&mut self, tokens: &[String]) -> &mut Node {
        let mut node = &mut self.root;
        for token in tokens {
            let at = match node.children.iter().position(|c| c.token == *token) {
                Some(at) => at,
                None => {
                    node.children.push(Node {
                        token: token.clone(),
                        ..Node::default()
                    });
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at];
        }
        node
    }

    /// Runs the plan over `bytes`, keeping the items `skip..skip + take` of the array found
    /// at the items pointer. `capacity` is a guess of the items kept (the previous page's).
    pub(crate) fn run<'de, T: DeserializeOwned>(
        &self,
        bytes: &'de [u8],
        skip: usize,
        take: usize,
        capacity: usize,
    ) -> Result<Extracted<'de, T>, Failure> {
        let mut out = Out {
            raws: vec![None; self.raw_count],
            items: None,
            skip,
            take,
            capacity,
            failed_item: None,
            not_array: false,
        };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let result = NodeSeed {
            node: &self.root,
            out: &mut out,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if let Err(error) = result {
            return Err(if error.is_syntax() || error.is_eof() {
                Failure::Json(error)
            } else if out.not_array {
                Failure::NotArray
            } else if let Some(index) = out.failed_item {
                Failure::Item { index, error }
            } else {
                Failure::Json(error)
            });
        }
        Ok(Extracted {
            raws: out.raws,
            items: out.items,
        })
    }
}

/// Why a page could not be decoded.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The body is not JSON.
    Json(serde_json::Error),
    /// The value at the items pointer is neither an array nor `null`.
    NotArray,
    /// The item at `index` of the array does not match the item type.
    Item {
        index: usize,
        error: serde_json::Error,
    },
}

/// What a pass found.
#[derive(Debug)]
pub(crate) struct Extracted<'de, T> {
    raws: Vec<Option<&'de RawValue>>,
    items: Option<Items<T>>,
}

impl<'de, T> Extracted<'de, T> {
    /// The raw value at the `i`-th pointer given to [`Plan::new`], if the body has one.
    pub(crate) fn raw(&self, i: usize) -> Option<&'de RawValue> {
        self.raws.get(i).copied().flatten()
    }

    /// The raw values, in the order of the pointers given to [`Plan::new`].
    pub(crate) fn raws(&self) -> &[Option<&'de RawValue>] {
        &self.raws
    }

    /// The items, `None` when the body has no value at the items pointer.
    pub(crate) fn take_items(&mut self) -> Option<Items<T>> {
        self.items.take()
    }
}

/// The items of a page.
#[derive(Debug)]
pub(crate) struct Items<T> {
    /// The items kept (`skip..skip + take`).
    pub(crate) kept: Vec<T>,
    /// How many items the page holds in all.
    pub(crate) count: usize,
}

// ===== the pass =====

struct Out<'de, T> {
    raws: Vec<Option<&'de RawValue>>,
    items: Option<Items<T>>,
    skip: usize,
    take: usize,
    capacity: usize,
    /// The index of the item being decoded, while one is.
    failed_item: Option<usize>,
    not_array: bool,
}

struct NodeSeed<'p, 'o, 'de, T> {
    node: &'p Node,
    out: &'o mut Out<'de, T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let Self { node, out } = self;
        let mixed = !node.raws.is_empty() || (node.items && !node.children.is_empty());
        if !mixed && node.items {
            return ItemsSeed { out }.deserialize(d);
        }
        if !mixed {
            return d.deserialize_any(NodeVisitor { node, out });
        }
        // Several things at one place (rare: a cursor inside the items, a raw value that is
        // also the root of another pointer): borrow it raw, then read it again for each.
        let raw = <&'de RawValue>::deserialize(d)?;
        for &i in &node.raws {
            out.raws[i] = Some(raw);
        }
        let again = |result: Result<(), serde_json::Error>| result.map_err(de::Error::custom);
        if node.items {
            let mut de = serde_json::Deserializer::from_str(raw.get());
            again(ItemsSeed { out: &mut *out }.deserialize(&mut de))?;
        }
        if !node.children.is_empty() {
            let mut de = serde_json::Deserializer::from_str(raw.get());
            again(de.deserialize_any(NodeVisitor {
                node,
                out: &mut *out,
            }))?;
        }
        Ok(())
    }
}

/// Visits a value on the way to the pointers below `node`, skipping everything else.
struct NodeVisitor<'p, 'o, 'de, T> {
    node: &'p Node,
    out: &'o mut Out<'de, T>,
}

impl<'de, T: DeserializeOwned> Visitor<'de> for NodeVisitor<'_, '_, 'de, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.node.children.iter().find(|c| c.token == *key) {
                Some(child) => map.next_value_seed(NodeSeed {
                    node: child,
                    out: &mut *self.out,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let child = self
                .node
                .children
                .iter()
                .find(|c| is_index(&c.token, index));
            let more = match child {
                Some(child) => seq
                    .next_element_seed(NodeSeed {
                        node: child,
                        out: &mut *self.out,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Whether a pointer token designates array index `index` (decimal, no leading zero).
fn is_index(token: &str, index: usize) -> bool {
    token.len() <= 20 && token.parse::<usize>().is_ok_and(|i| i == index) && {
        token == "0" || !token.starts_with('0')
    }
}

/// An object key, borrowed from the page when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// The array of items: the kept ones decoded as `T`, the others skipped.
struct ItemsSeed<'o, 'de, T> {
    out: &'o mut Out<'de, T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for ItemsSeed<'_, 'de, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(ItemsVisitor {
            out: self.out,
            item: PhantomData,
        })
    }
}

struct ItemsVisitor<'o, 'de, T> {
    out: &'o mut Out<'de, T>,
    item: PhantomData<fn() -> T>,
}

impl<'o, 'de, T> ItemsVisitor<'o, 'de, T> {
    fn not_array<E: de::Error>(self, unexpected: de::Unexpected<'_>) -> Result<(), E> {
        self.out.not_array = true;
        Err(E::invalid_type(unexpected, &"an array of items"))
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for ItemsVisitor<'_, 'de, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        let mut kept = Vec::with_capacity(out.capacity.min(out.take));
        let mut count = 0usize;
        while count < out.skip {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                out.items = Some(Items { kept, count });
                return Ok(());
            }
            count += 1;
        }
        while kept.len() < out.take {
            out.failed_item = Some(count);
            match seq.next_element::<T>()? {
                Some(item) => kept.push(item),
                None => break,
            }
            count += 1;
        }
        out.failed_item = None;
        if kept.len() == out.take {
            while seq.next_element::<IgnoredAny>()?.is_some() {
                count += 1;
            }
        }
        out.items = Some(Items { kept, count });
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.items = Some(Items {
            kept: Vec::new(),
            count: 0,
        });
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.not_array(de::Unexpected::Map)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.not_array(de::Unexpected::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.not_array(de::Unexpected::Signed(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.not_array(de::Unexpected::Unsigned(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.not_array(de::Unexpected::Float(v))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_array(de::Unexpected::Other("a string"))
    }
}

// ===== scalars =====

/// A value read at a pointer, for cursors, URLs and counts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Null,
    Text(String),
    /// A JSON number, as its text.
    Number(String),
    Other,
}

impl Scalar {
    pub(crate) fn of(raw: &RawValue) -> Self {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text).map_or(Self::Other, Self::Text),
            Some(b'n') => Self::Null,
            Some(b'-' | b'0'..=b'9') => serde_json::from_str::<serde_json::Number>(text)
                .map_or(Self::Other, |n| Self::Number(n.to_string())),
            _ => Self::Other,
        }
    }

    /// A count given as a non-negative integer or a numeric string.
    pub(crate) fn count(raw: &RawValue) -> Option<u64> {
        match Self::of(raw) {
            Self::Number(n) | Self::Text(n) => n.trim().parse().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn pointer(text: &str) -> Pointer {
        Pointer::parse(text).unwrap()
    }

    /// The items kept, the item count and the raw values found.
    type Found = (Option<Vec<Value>>, usize, Vec<Option<String>>);

    fn run(
        body: &str,
        items: Option<&str>,
        raws: &[&str],
        skip: usize,
        take: usize,
    ) -> Result<Found, Failure> {
        let items = items.map(pointer);
        let raws: Vec<Pointer> = raws.iter().map(|p| pointer(p)).collect();
        let refs: Vec<&Pointer> = raws.iter().collect();
        let plan = Plan::new(items.as_ref(), &refs);
        let mut found = plan.run::<Value>(body.as_bytes(), skip, take, 0)?;
        let raws = found
            .raws()
            .iter()
            .map(|r| r.map(|r| r.get().to_owned()))
            .collect();
        let items = found.take_items();
        let count = items.as_ref().map_or(0, |i| i.count);
        Ok((items.map(|i| i.kept), count, raws))
    }

    #[test]
    fn items_and_values_at_pointers_in_one_pass() {
        let body = r#"{"meta":{"next":"c2","total":"7"},"data":{"items":[1,2,3,4]},"x":[{"a":1}]}"#;
        let (items, count, raws) = run(
            body,
            Some("/data/items"),
            &["/meta/next", "/meta/total", "/x/0/a", "/missing"],
            1,
            2,
        )
        .unwrap();
        assert_eq!(items, Some(vec![json!(2), json!(3)]));
        assert_eq!(count, 4);
        assert_eq!(
            raws,
            [
                Some(r#""c2""#.to_owned()),
                Some(r#""7""#.to_owned()),
                Some("1".to_owned()),
                None
            ]
        );
    }

    #[test]
    fn a_pointer_inside_the_items_is_read_too() {
        let body = r#"{"data":[{"id":"a"},{"id":"b"}],"has_more":true}"#;
        let (items, count, raws) =
            run(body, Some("/data"), &["/data/1/id", "/has_more", ""], 0, 9).unwrap();
        assert_eq!(count, 2);
        assert_eq!(items.unwrap().len(), 2);
        assert_eq!(raws[0].as_deref(), Some(r#""b""#));
        assert_eq!(raws[1].as_deref(), Some("true"));
        assert_eq!(raws[2].as_deref(), Some(body));
    }

    #[test]
    fn escaped_keys_and_tokens_match() {
        let body = r#"{"a/b":{"m~n":[10]},"\u0063":[1]}"#;
        let (items, _, raws) = run(body, Some("/c"), &["/a~1b/m~0n/0"], 0, 9).unwrap();
        assert_eq!(items, Some(vec![json!(1)]));
        assert_eq!(raws[0].as_deref(), Some("10"));
    }

    #[test]
    fn null_items_are_an_empty_page_and_missing_items_are_none() {
        let (items, count, _) = run(r#"{"data":null}"#, Some("/data"), &[], 0, 9).unwrap();
        assert_eq!((items, count), (Some(vec![]), 0));
        let (items, _, _) = run(r#"{"other":[1]}"#, Some("/data"), &[], 0, 9).unwrap();
        assert_eq!(items, None);
    }

    #[test]
    fn failures_say_what_went_wrong() {
        assert!(matches!(
            run(r#"{"data":{}}"#, Some("/data"), &[], 0, 9),
            Err(Failure::NotArray)
        ));
        assert!(matches!(
            run("[1,2", None, &[], 0, 9),
            Err(Failure::Json(_))
        ));
        assert!(matches!(
            run("[1] x", None, &[], 0, 9),
            Err(Failure::Json(_))
        ));
        let plan = Plan::new(None, &[]);
        assert!(matches!(
            plan.run::<u8>(b"[1, 2, 300]", 0, 9, 0),
            Err(Failure::Item { index: 2, .. })
        ));
        // Items skipped or past the take are not decoded as `T`.
        let mut found = plan.run::<u8>(b"[300, 2, 300]", 1, 1, 0).unwrap();
        let items = found.take_items().unwrap();
        assert_eq!((items.kept, items.count), (vec![2], 3));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(r#"{{"a":{}}}"#, "[".repeat(100_000));
        for plan in [
            Plan::new(None, &[]),
            Plan::new(Some(&pointer("/a")), &[]),
            Plan::new(Some(&pointer("/b")), &[&pointer("/a/0/0")]),
        ] {
            assert!(plan.run::<Value>(deep.as_bytes(), 0, 9, 0).is_err());
        }
    }

    #[test]
    fn scalars() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert_eq!(Scalar::of(&raw(r#""a\"b""#)), Scalar::Text("a\"b".into()));
        assert_eq!(Scalar::of(&raw("12")), Scalar::Number("12".into()));
        assert_eq!(Scalar::of(&raw("null")), Scalar::Null);
        assert_eq!(Scalar::of(&raw("[1]")), Scalar::Other);
        assert_eq!(Scalar::count(&raw(r#"" 42 ""#)), Some(42));
        assert_eq!(Scalar::count(&raw("-1")), None);
    }

    #[test]
    fn pointers() {
        assert_eq!(pointer("").tokens, Vec::<String>::new());
        assert_eq!(pointer("/a~1b/~0").tokens, ["a/b", "~"]);
        assert_eq!(pointer("/").tokens, [""]);
        assert!(Pointer::parse("a").is_none());
        assert!(is_index("0", 0) && is_index("12", 12));
        assert!(!is_index("01", 1) && !is_index("-1", 1) && !is_index("x", 0));
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::*;

        /// Any JSON value, with keys that need pointer escapes (`~`, `/`) and string escapes.
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                "[a-z~/\"\\\\é\u{1F600}]{0,6}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 48, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::btree_map("[ab~/0-2]{0,2}", inner, 0..5)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A JSON pointer made of tokens likely to exist in [`json`] values.
        fn pointer_text() -> impl Strategy<Value = String> {
            prop::collection::vec("[ab~/0-2]{0,2}", 0..4).prop_map(|tokens| {
                tokens
                    .iter()
                    .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
                    .collect()
            })
        }

        proptest! {
            #[test]
            fn never_panics_on_any_bytes(
                bytes in prop::collection::vec(any::<u8>(), 0..256),
                skip in 0usize..4,
                take in 0usize..4,
            ) {
                let items = Pointer::parse("/items").unwrap();
                let next = Pointer::parse("/meta/next").unwrap();
                let plan = Plan::new(Some(&items), &[&next, &items]);
                let _ = plan.run::<Value>(&bytes, skip, take, 8);
                let plan = Plan::new(None, &[&next]);
                let _ = plan.run::<u64>(&bytes, skip, take, 8);
            }

            #[test]
            fn never_panics_on_json_like_text(text in r#"[\[\]{}",:0-9a-z\\ ]{0,128}"#) {
                let plan = Plan::new(Pointer::parse("/a").as_ref(), &[&Pointer::parse("/a/0").unwrap()]);
                let _ = plan.run::<Value>(text.as_bytes(), 0, usize::MAX, 0);
            }

            #[test]
            fn the_value_at_a_pointer_is_what_serde_json_finds(doc in json(), pointer in pointer_text()) {
                let bytes = serde_json::to_vec(&doc).unwrap();
                let doc: Value = serde_json::from_slice(&bytes).unwrap();
                let found = Plan::raw(&Pointer::parse(&pointer).unwrap())
                    .run::<Value>(&bytes, 0, 0, 0)
                    .unwrap();
                let found: Option<Value> = found.raw(0).map(|raw| serde_json::from_str(raw.get()).unwrap());
                prop_assert_eq!(found.as_ref(), doc.pointer(&pointer));
            }

            #[test]
            fn items_cursor_and_total_of_an_envelope(
                items in prop::collection::vec(json(), 0..12),
                cursor in prop::option::of("[ -~é]{0,12}"),
                total in any::<u64>(),
                noise in json(),
                skip in 0usize..14,
                take in 0usize..14,
            ) {
                let body = json!({
                    "noise": noise,
                    "data": { "items": items },
                    "meta": { "next_cursor": cursor, "total": total.to_string() },
                });
                let bytes = serde_json::to_vec(&body).unwrap();
                let at = Pointer::parse("/data/items").unwrap();
                let next = Pointer::parse("/meta/next_cursor").unwrap();
                let count = Pointer::parse("/meta/total").unwrap();
                let mut found = Plan::new(Some(&at), &[&next, &count])
                    .run::<Value>(&bytes, skip, take, 4)
                    .unwrap();
                let got = found.take_items().unwrap();
                let items: Vec<Value> = serde_json::from_slice::<Value>(&bytes).unwrap()["data"]["items"]
                    .as_array()
                    .unwrap()
                    .clone();
                let expected: Vec<Value> = items.iter().skip(skip).take(take).cloned().collect();
                prop_assert_eq!(got.kept, expected);
                prop_assert_eq!(got.count, items.len());
                let cursor_found = match Scalar::of(found.raw(0).unwrap()) {
                    Scalar::Text(text) => Some(text),
                    Scalar::Null => None,
                    other => panic!("unexpected {other:?}"),
                };
                prop_assert_eq!(cursor_found, cursor);
                prop_assert_eq!(Scalar::count(found.raw(1).unwrap()), Some(total));
            }
        }
    }
}
