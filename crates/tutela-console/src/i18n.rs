//! The console's two languages. The browser's `Accept-Language` chooses, a `tutela_lang` cookie
//! (set by the switch in the header) overrides it. Strings sit at their call sites as pairs
//! (`l.t("Queue", "队列")`), so a missing translation cannot compile.

use axum::http::HeaderMap;

/// English or Chinese.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// The cookie, else the first of the browser's languages that is `zh*` or `en*`.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(v) = crate::auth::cookie(headers, "tutela_lang") {
            return Lang::parse(&v).unwrap_or(Lang::En);
        }
        let accept = headers
            .get("accept-language")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for part in accept.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Lang::Zh;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::En
    }

    /// `en` or `zh`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The code (`lang` attribute, cookie).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The other language's short code, for the switch.
    pub fn other(self) -> (&'static str, &'static str) {
        match self {
            Lang::En => ("zh", "中文"),
            Lang::Zh => ("en", "English"),
        }
    }

    /// The string in this language.
    pub fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// A duration such as `4 min` / `4 分钟`.
    pub fn ago(self, secs: i64) -> String {
        let s = secs.max(0);
        match (self, s) {
            (Lang::En, 0..=59) => format!("{s} s"),
            (Lang::En, 60..=3599) => format!("{} min", s / 60),
            (Lang::En, 3600..=86_399) => format!("{} h {} min", s / 3600, s % 3600 / 60),
            (Lang::En, _) => format!("{} d", s / 86_400),
            (Lang::Zh, 0..=59) => format!("{s} 秒"),
            (Lang::Zh, 60..=3599) => format!("{} 分钟", s / 60),
            (Lang::Zh, 3600..=86_399) => format!("{} 小时 {} 分钟", s / 3600, s % 3600 / 60),
            (Lang::Zh, _) => format!("{} 天", s / 86_400),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookie_then_browser_then_english() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(&h), Lang::En);
        h.insert(
            "accept-language",
            HeaderValue::from_static("fr;q=1, zh-CN;q=0.9, en;q=0.8"),
        );
        assert_eq!(Lang::of(&h), Lang::Zh);
        h.insert("cookie", HeaderValue::from_static("a=b; tutela_lang=en"));
        assert_eq!(Lang::of(&h), Lang::En);
        assert_eq!(Lang::Zh.ago(125), "2 分钟");
        assert_eq!(Lang::En.ago(3700), "1 h 1 min");
    }
}
