//! The little of quick-xml the metadata readers share: attributes by local
//! name and element text, with errors as plain strings the callers wrap
//! with the file name.
use quick_xml::events::BytesStart;

/// The attribute `name` (local name, unescaped) of `e`.
pub(crate) fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("bad attribute in <{}>: {err}", local(e)))?;
        if a.key.local_name().as_ref() == name.as_bytes() {
            let v = a
                .unescape_value()
                .map_err(|err| format!("bad value of {name} in <{}>: {err}", local(e)))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// The element's local name, for messages and matching.
pub(crate) fn local(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}
