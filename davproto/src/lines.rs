//! iCalendar and vCard text as a tree of components and content lines, without
//! interpreting values: what PUT validation and the query filters read.

/// One property line: its name (upper case, group dropped), parameters and value.
#[derive(Debug, Clone)]
pub(crate) struct Prop<'a> {
    pub(crate) name: String,
    pub(crate) params: Vec<(String, &'a str)>,
    pub(crate) value: &'a str,
}

impl Prop<'_> {
    /// The first value of parameter `name` (upper case), quotes removed.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim_matches('"'))
    }
}

/// A component and its own properties (not its children's).
#[derive(Debug, Clone)]
pub(crate) struct Component<'a> {
    pub(crate) name: String,
    /// 1 for the top-level object.
    pub(crate) depth: usize,
    /// The component it is inside (an index in the same list).
    pub(crate) parent: Option<usize>,
    pub(crate) props: Vec<Prop<'a>>,
}

impl Component<'_> {
    pub(crate) fn props<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Prop<'s>> + 's {
        self.props.iter().filter(move |p| p.name == name)
    }
    pub(crate) fn has(&self, name: &str) -> bool {
        self.props(name).next().is_some()
    }
}

/// Content lines without their folding (RFC 5545 §3.1), empty lines dropped.
pub(crate) fn unfold(text: &str) -> Vec<String> {
    let mut lines = postern_core::content::unfolded_lines(text.as_bytes());
    lines.retain(|l| !l.trim().is_empty());
    lines
}

/// Splits a content line into name, parameters and value; `None` if it is not one.
pub(crate) fn content_line(line: &str) -> Option<Prop<'_>> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'-' | b'.' | b'_'))
    {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    // vCard groups: `item1.EMAIL` is an EMAIL.
    let name = line[..i].rsplit('.').next()?.to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        match bytes.get(i) {
            Some(b':') => {
                return Some(Prop {
                    name,
                    params,
                    value: &line[i + 1..],
                });
            }
            Some(b';') => {
                i += 1;
                let start = i;
                let mut quoted = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'"' => quoted = !quoted,
                        b';' | b':' if !quoted => break,
                        _ => {}
                    }
                    i += 1;
                }
                if quoted {
                    return None;
                }
                let p = &line[start..i];
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                if k.is_empty() {
                    return None;
                }
                params.push((k.to_ascii_uppercase(), v));
            }
            _ => return None,
        }
    }
}

/// The components of a one-object body, or why it is not one.
pub(crate) fn structure<'a>(lines: &'a [String], top: &str) -> Result<Vec<Component<'a>>, String> {
    let mut out: Vec<Component<'a>> = Vec::new();
    // Indexes into `out` of the open components.
    let mut open: Vec<usize> = Vec::new();
    let mut ended = false;
    for line in lines {
        let prop =
            content_line(line).ok_or_else(|| format!("not a content line: {:?}", clip(line)))?;
        if ended {
            return Err(format!("content after END:{top}"));
        }
        match prop.name.as_str() {
            "BEGIN" => {
                let name = prop.value.trim().to_ascii_uppercase();
                if open.is_empty() && name != top {
                    return Err(format!("expected BEGIN:{top}"));
                }
                if open.len() >= 16 {
                    return Err("components nest too deep".into());
                }
                out.push(Component {
                    name,
                    depth: open.len() + 1,
                    parent: open.last().copied(),
                    props: Vec::new(),
                });
                open.push(out.len() - 1);
            }
            "END" => {
                let name = prop.value.trim().to_ascii_uppercase();
                let Some(i) = open.pop() else {
                    return Err(format!("END:{name} without BEGIN"));
                };
                if out[i].name != name {
                    return Err(format!("END:{name} closes BEGIN:{}", out[i].name));
                }
                ended = open.is_empty();
            }
            _ => match open.last() {
                Some(&i) => out[i].props.push(prop),
                None => return Err(format!("expected BEGIN:{top}")),
            },
        }
    }
    if !ended {
        return Err(match open.last() {
            Some(&i) => format!("no END:{}", out[i].name),
            None => format!("no BEGIN:{top}"),
        });
    }
    Ok(out)
}

pub(crate) fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}
