//! An API error body (RFC 9457 problem details, OAuth errors, `{"message": ...}`, anything).
//! The input's first two lines are secrets the client holds, the rest the body.
//! No panic; the raw copy is bounded; a secret never survives into the parsed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A secret as servers issue them: at least 8 characters, token68-like.
fn secret(line: &[u8]) -> Option<&str> {
    std::str::from_utf8(line).ok().filter(|s| {
        s.len() >= 8
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    })
}

fuzz_target!(|input: &[u8]| {
    let mut lines = input.splitn(3, |&b| b == b'\n');
    let (Some(a), Some(b), Some(body)) = (lines.next(), lines.next(), lines.next()) else {
        return;
    };
    let secrets: Vec<&str> = [secret(a), secret(b)].into_iter().flatten().collect();
    let error = authed::__fuzz::api_error(body, &secrets);
    let bound = authed::ApiError::RAW_LIMIT + "…[truncated]".len();
    assert!(error.raw.len() <= bound, "{} bytes kept", error.raw.len());
    let fields = [
        &error.problem_type,
        &error.title,
        &error.detail,
        &error.instance,
        &error.code,
        &error.message,
    ];
    let shown: Vec<&str> = fields
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain([error.raw.as_str()])
        .collect();
    for secret in &secrets {
        // A secret inside another, or inside the replacement text, may be left behind by the
        // other's replacement: only distinct secrets are checked.
        let inside_another = secrets.iter().any(|o| o != secret && o.contains(secret));
        if inside_another || "[redacted]…[truncated]".contains(secret) {
            continue;
        }
        for text in &shown {
            assert!(
                !text.contains(secret),
                "secret {secret:?} survives in {text:?}"
            );
        }
    }
});
