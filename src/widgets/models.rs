//! The Widgets API's JSON bodies as Rust types.

use std::{convert::Infallible, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A widget, as the API returns it.
///
/// `#[non_exhaustive]`: the API may add fields; they are ignored until this type learns them,
/// and adding them here is not a breaking change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Widget {
    /// Assigned by the server on creation.
    pub id: u64,
    /// A non-empty display name.
    pub name: String,
    /// The widget's color.
    pub color: Color,
    /// Weight in grams.
    pub weight_grams: u32,
    /// Free-form labels, possibly none.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The color of a widget.
///
/// An enum, so that `match` finds typos and lists the known values; with an
/// [`Other`](Color::Other) fallback, so that **a color the server adds later still
/// deserializes** instead of failing every listing that contains it. `"blue"` and
/// `Color::Blue` convert into each other, so filters and constructors accept either.
///
/// ```
/// use authed::widgets::Color;
///
/// assert_eq!(Color::from("blue"), Color::Blue);
/// assert_eq!(Color::from("teal"), Color::Other("teal".into()));
/// assert_eq!(Color::Yellow.as_str(), "yellow");
/// assert_eq!(serde_json::to_string(&Color::Red).unwrap(), r#""red""#);
/// ```
///
/// `#[non_exhaustive]`: when a color becomes a named variant, values that used to arrive as
/// `Other("that color")` arrive as the variant; match on [`as_str`](Color::as_str) if you need
/// to be independent of that.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Color {
    /// `"red"`
    Red,
    /// `"green"`
    Green,
    /// `"blue"`
    Blue,
    /// `"yellow"`
    Yellow,
    /// A color this version of the crate does not know, kept as the server wrote it.
    /// The server rejects unknown colors in requests with `422`.
    Other(String),
}

impl Color {
    /// The color as the API spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
            Color::Yellow => "yellow",
            Color::Other(other) => other,
        }
    }
}

impl From<&str> for Color {
    fn from(s: &str) -> Self {
        match s {
            "red" => Color::Red,
            "green" => Color::Green,
            "blue" => Color::Blue,
            "yellow" => Color::Yellow,
            other => Color::Other(other.to_owned()),
        }
    }
}

impl From<String> for Color {
    fn from(s: String) -> Self {
        match Color::from(s.as_str()) {
            Color::Other(_) => Color::Other(s),
            known => known,
        }
    }
}

impl FromStr for Color {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Color::from(s))
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Color::from)
    }
}

/// The body of `POST /v1/widgets`: a widget to create.
///
/// Built with [`NewWidget::new`] and setters, because the type is `#[non_exhaustive]` (the
/// API may accept more fields later) and so cannot be written as a struct literal outside
/// this crate.
///
/// ```
/// use authed::widgets::{Color, NewWidget};
///
/// let new = NewWidget::new("sprocket", Color::Blue).weight_grams(250).tag("metal");
/// assert_eq!(
///     serde_json::to_value(&new).unwrap(),
///     serde_json::json!({"name": "sprocket", "color": "blue", "weight_grams": 250, "tags": ["metal"]})
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
#[must_use]
pub struct NewWidget {
    /// Must not be empty (the server answers `422`).
    pub name: String,
    /// Must be a color the server knows (else `422`).
    pub color: Color,
    /// Weight in grams; 0 unless set.
    pub weight_grams: u32,
    /// Labels; not sent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl NewWidget {
    /// A widget with a name and a color, weighing 0 g, without tags.
    pub fn new(name: impl Into<String>, color: impl Into<Color>) -> Self {
        Self {
            name: name.into(),
            color: color.into(),
            weight_grams: 0,
            tags: Vec::new(),
        }
    }

    /// Sets the weight in grams.
    pub fn weight_grams(mut self, grams: u32) -> Self {
        self.weight_grams = grams;
        self
    }

    /// Adds one tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Replaces the tags.
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }
}

/// The body of `PATCH /v1/widgets/{id}`: the fields to change, the others left as they are.
///
/// Only the fields set are sent.
///
/// ```
/// use authed::widgets::WidgetPatch;
///
/// let patch = WidgetPatch::new().name("sprocket v2").weight_grams(300);
/// assert_eq!(
///     serde_json::to_value(&patch).unwrap(),
///     serde_json::json!({"name": "sprocket v2", "weight_grams": 300})
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
#[must_use]
pub struct WidgetPatch {
    /// A new name (non-empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new color.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// A new weight in grams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<u32>,
    /// New tags, replacing the old ones (`Some(vec![])` clears them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl WidgetPatch {
    /// A patch that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Changes the color.
    pub fn color(mut self, color: impl Into<Color>) -> Self {
        self.color = Some(color.into());
        self
    }

    /// Changes the weight.
    pub fn weight_grams(mut self, grams: u32) -> Self {
        self.weight_grams = Some(grams);
        self
    }

    /// Replaces the tags.
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }
}

/// The authenticated user, from `GET /v1/me`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Profile {
    /// The user's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// The OAuth scopes the access token carries.
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widget_with_unknown_color_still_decodes() {
        let w: Widget = serde_json::from_str(
            r#"{"id":7,"name":"a","color":"ultraviolet","weight_grams":1,"tags":[],"extra":true}"#,
        )
        .unwrap();
        assert_eq!(w.color, Color::Other("ultraviolet".into()));
        assert_eq!(serde_json::to_value(&w.color).unwrap(), "ultraviolet");
    }

    #[test]
    fn new_widget_omits_empty_tags_and_empty_patch_is_empty_object() {
        let body = serde_json::to_string(&NewWidget::new("a", "red")).unwrap();
        assert_eq!(body, r#"{"name":"a","color":"red","weight_grams":0}"#);
        assert_eq!(serde_json::to_string(&WidgetPatch::new()).unwrap(), "{}");
    }
}
