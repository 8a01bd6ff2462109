//! A small SCIM filter parser and evaluator: `eq ne co sw pr`, `and`, `or`, parentheses, quoted strings.
//!
//! Written by hand because the fake needs only this subset, with Databricks' 200-node limit on top.

use std::borrow::Cow;

use serde_json::Value;

/// Databricks rejects filters with more nodes than this.
pub const MAX_NODES: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        attr: String,
        op: Op,
        value: Literal,
    },
    Present(String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Quoted(String),
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(escaped) => text.push(escaped),
                            None => return Err("unterminated string".into()),
                        },
                        Some('"') => break,
                        Some(other) => text.push(other),
                        None => return Err("unterminated string".into()),
                    }
                }
                tokens.push(Token::Quoted(text));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    nodes: usize,
}

impl Parser {
    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn count(&mut self) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!("filter has more than {MAX_NODES} nodes"));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Filter, String> {
        let mut left = self.and_expr()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            self.count()?;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, String> {
        let mut left = self.factor()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            self.count()?;
            let right = self.factor()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Filter, String> {
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or_expr()?;
                if self.tokens.get(self.pos) != Some(&Token::Close) {
                    return Err("missing closing parenthesis".into());
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Token::Word(attr)) => {
                self.pos += 1;
                self.count()?;
                let op = match self.tokens.get(self.pos) {
                    Some(Token::Word(op)) => op.to_ascii_lowercase(),
                    _ => return Err(format!("expected an operator after {attr}")),
                };
                self.pos += 1;
                let op = match op.as_str() {
                    "pr" => return Ok(Filter::Present(attr)),
                    "eq" => Op::Eq,
                    "ne" => Op::Ne,
                    "co" => Op::Co,
                    "sw" => Op::Sw,
                    other => return Err(format!("unsupported operator {other}")),
                };
                let value = match self.tokens.get(self.pos) {
                    Some(Token::Quoted(text)) => Literal::Str(text.clone()),
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
                    _ => return Err(format!("expected a value after {attr} {op:?}")),
                };
                self.pos += 1;
                Ok(Filter::Compare { attr, op, value })
            }
            _ => Err("expected an attribute or a parenthesis".into()),
        }
    }
}

/// Parses a filter, or says why it is invalid.
pub fn parse(input: &str) -> Result<Filter, String> {
    let mut parser = Parser {
        tokens: tokenize(input)?,
        pos: 0,
        nodes: 0,
    };
    let filter = parser.or_expr()?;
    if parser.pos != parser.tokens.len() {
        return Err("unexpected trailing input".into());
    }
    Ok(filter)
}

/// Values at a dotted attribute path, with case-insensitive names; arrays fan out.
fn lookup<'a>(resource: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![resource];
    for segment in path.split('.') {
        let mut next = Vec::new();
        for value in current {
            let items: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for item in items {
                if let Value::Object(map) = item
                    && let Some((_, v)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(segment))
                {
                    match v {
                        Value::Array(inner) => next.extend(inner.iter()),
                        other => next.push(other),
                    }
                }
            }
        }
        current = next;
    }
    current
}

fn case_insensitive(attr: &str) -> bool {
    attr.eq_ignore_ascii_case("userName") || attr.eq_ignore_ascii_case("emails.value")
}

impl Filter {
    /// Whether the filter tests `attr` (case-insensitive) anywhere.
    pub fn mentions(&self, attr: &str) -> bool {
        match self {
            Self::And(a, b) | Self::Or(a, b) => a.mentions(attr) || b.mentions(attr),
            Self::Present(name) | Self::Compare { attr: name, .. } => {
                name.eq_ignore_ascii_case(attr)
            }
        }
    }

    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Self::And(a, b) => a.matches(resource) && b.matches(resource),
            Self::Or(a, b) => a.matches(resource) || b.matches(resource),
            Self::Present(attr) => lookup(resource, attr).iter().any(|v| !v.is_null()),
            Self::Compare { attr, op, value } => {
                let found = lookup(resource, attr);
                let hit = found
                    .iter()
                    .any(|v| compare(v, *op, value, case_insensitive(attr)));
                match op {
                    // `ne` holds when no value equals (including when the attribute is absent).
                    Op::Ne => !found
                        .iter()
                        .any(|v| compare(v, Op::Eq, value, case_insensitive(attr))),
                    _ => hit,
                }
            }
        }
    }
}

fn compare(actual: &Value, op: Op, expected: &Literal, fold: bool) -> bool {
    match (actual, expected) {
        (Value::String(a), Literal::Str(e)) => {
            // Equality of ASCII text (every name the product looks up) without allocating: a filter is
            // tested against every resource of the kind.
            if fold && matches!(op, Op::Eq | Op::Ne) && a.is_ascii() && e.is_ascii() {
                return a.eq_ignore_ascii_case(e) == matches!(op, Op::Eq);
            }
            let (a, e): (Cow<'_, str>, Cow<'_, str>) = if fold {
                (a.to_lowercase().into(), e.to_lowercase().into())
            } else {
                (a.as_str().into(), e.as_str().into())
            };
            match op {
                Op::Eq => a == e,
                Op::Ne => a != e,
                Op::Co => a.contains(e.as_ref()),
                Op::Sw => a.starts_with(e.as_ref()),
            }
        }
        (Value::Bool(a), Literal::Bool(e)) => matches!(op, Op::Eq) == (a == e),
        (Value::Null, Literal::Null) => matches!(op, Op::Eq),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({"userName": "Alice@Contoso.com", "active": true, "displayName": "Alice A",
               "emails": [{"value": "alice@contoso.com", "primary": true}]})
    }

    #[test]
    fn user_name_matches_case_insensitively_and_attribute_names_too() {
        let filter = parse(r#"USERNAME eq "alice@contoso.COM""#).expect("valid");
        assert!(filter.matches(&user()));
    }

    #[test]
    fn case_folding_holds_for_ne_and_for_names_beyond_ascii() {
        let user = json!({"userName": "Ölaf.Ünal@Contoso.com"});
        let matches = |text: &str| parse(text).expect("valid").matches(&user);
        assert!(matches(r#"userName eq "ölaf.ünal@contoso.com""#));
        assert!(!matches(r#"userName ne "ÖLAF.ÜNAL@CONTOSO.COM""#));
        assert!(matches(r#"userName ne "olaf.unal@contoso.com""#));
        assert!(!matches(r#"userName eq "alice@contoso.com""#));
        assert!(matches(r#"userName ne "ALICE@contoso.com""#));
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_override_it() {
        let loose = parse(r#"displayName eq "nobody" and active eq true or displayName sw "Ali""#)
            .expect("valid");
        assert!(loose.matches(&user()));
        let grouped =
            parse(r#"displayName eq "nobody" and (active eq true or displayName sw "Ali")"#)
                .expect("valid");
        assert!(!grouped.matches(&user()));
    }

    #[test]
    fn contains_and_not_equal_and_nested_arrays_work() {
        assert!(
            parse(r#"emails.value co "contoso""#)
                .expect("valid")
                .matches(&user())
        );
        assert!(
            parse(r#"displayName ne "Bob""#)
                .expect("valid")
                .matches(&user())
        );
        assert!(
            !parse(r#"displayName ne "Alice A""#)
                .expect("valid")
                .matches(&user())
        );
    }

    #[test]
    fn quoted_strings_may_hold_escaped_quotes_and_keywords() {
        let filter = parse(r#"displayName eq "say \"and\" or""#).expect("valid");
        assert_eq!(
            filter,
            Filter::Compare {
                attr: "displayName".into(),
                op: Op::Eq,
                value: Literal::Str("say \"and\" or".into())
            }
        );
    }

    #[test]
    fn a_filter_with_more_than_two_hundred_nodes_is_rejected() {
        let clause = r#"userName eq "x""#;
        let ok = vec![clause; 100].join(" or ");
        assert!(parse(&ok).is_ok(), "199 nodes are fine");
        let too_many = vec![clause; 101].join(" or ");
        assert!(parse(&too_many).is_err(), "201 nodes are not");
    }

    #[test]
    fn a_filter_says_which_attributes_it_tests() {
        let filter = parse(r#"userName eq "a" or (active eq true and EXTERNALID pr)"#).unwrap();
        assert!(filter.mentions("externalId"));
        assert!(filter.mentions("username"));
        assert!(!filter.mentions("displayName"));
    }

    #[test]
    fn malformed_filters_are_errors() {
        for bad in [
            "userName eq",
            "(userName eq \"a\"",
            "userName gt \"a\"",
            "eq \"a\" x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
