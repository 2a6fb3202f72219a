//! The LLM reply classifier over an OpenAI-compatible chat-completions API:
//! `POST {api_base}/chat/completions` with `Authorization: Bearer {key}` (when a key is
//! configured; local servers often need none) and the body
//!
//! ```json
//! {"model": "…", "temperature": 0, "response_format": {"type": "json_object"},
//!  "messages": [{"role": "system", "content": SYSTEM_PROMPT},
//!               {"role": "user", "content": "<the reply text>"}]}
//! ```
//!
//! The answer's `choices[0].message.content` must be a JSON object
//! `{"intent": "confirm|reschedule|cancel|unclear", "confidence": 0..1}`; anything else
//! (another status, unreadable JSON, an unknown intent, a confidence outside [0, 1]) is
//! an error, and the caller falls back to the local classifier. Below
//! [`CONFIDENCE_FLOOR`] the intent is reported `unclear`, as the local classifier does.
//!
//! Only the reply's text is sent — never the phone number, the customer or the
//! appointment. Nothing here logs the key; the text is logged at debug level only.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::ACCEPT;
use actors::classify::CONFIDENCE_FLOOR;
use actors::ports::providers::{Classification, Classifier, Intent, ProviderError};
use actors::ports::BoxFuture;
use actors::resilience::backoff::ErrorClass;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::LlmError;
use crate::providers::http::{self as transport, Answer};

/// Names this provider in errors.
const PROVIDER: &str = "llm";
/// The `source` of a classification the LLM made.
pub const SOURCE: &str = "llm";
/// The longest a classification may take, connect to the last byte (SPEC §4).
pub const LLM_TIMEOUT: Duration = Duration::from_secs(4);
/// The longest reply text sent (in characters); an SMS reply is far shorter.
const MAX_TEXT_CHARS: usize = 1000;

/// The instructions sent with every reply. Short: it is paid for on every call.
pub const SYSTEM_PROMPT: &str = "You classify a customer's text message replying to an \
appointment reminder. Answer with a JSON object only: {\"intent\": \"confirm\" | \
\"reschedule\" | \"cancel\" | \"unclear\", \"confidence\": a number from 0 to 1}. \
confirm: they will attend. reschedule: they want another day or time. cancel: they will \
not come. unclear: anything else, a question, or mixed signals.";

/// Endpoint, credentials and model of one OpenAI-compatible API.
#[derive(Clone)]
pub struct LlmSettings {
    /// The API base, e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub api_base: Url,
    pub api_key: Option<String>,
    pub model: String,
    /// The longest one request may take.
    pub timeout: Duration,
}

impl fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmSettings")
            .field("api_base", &self.api_base.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "********"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `{api_base}/chat/completions`.
fn endpoint(api_base: &Url) -> Result<Url, LlmError> {
    let mut url = api_base.clone();
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| LlmError::Config(format!("llm api_base {api_base} cannot take a path")))?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    Ok(url)
}

/// The request body for `text`.
pub fn request_body(model: &str, text: &str) -> serde_json::Value {
    let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": text},
        ],
        "temperature": 0,
        "response_format": {"type": "json_object"},
    })
}

/// The chat-completion answer, the fields we read.
#[derive(Debug, Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Debug, Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

/// What the model is asked to answer.
#[derive(Debug, Deserialize)]
struct Verdict {
    intent: String,
    confidence: f64,
}

/// The classification in a chat-completion answer body.
pub fn parse_answer(body: &[u8]) -> Result<Classification, LlmError> {
    let invalid = LlmError::InvalidAnswer;
    let completion: Completion =
        serde_json::from_slice(body).map_err(|e| invalid(format!("not a chat completion: {e}")))?;
    let content = completion
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message.content)
        .ok_or_else(|| invalid("no choices[0].message.content".to_string()))?;
    parse_content(&content)
}

/// The classification in the model's message content: the JSON object, possibly in a
/// Markdown code fence (some models add one even in JSON mode).
pub fn parse_content(content: &str) -> Result<Classification, LlmError> {
    let invalid = LlmError::InvalidAnswer;
    let trimmed = content.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .unwrap_or(trimmed);
    let verdict: Verdict = serde_json::from_str(unfenced.trim())
        .map_err(|e| invalid(format!("content is not the asked-for JSON: {e}")))?;
    let intent = match verdict.intent.trim().to_ascii_lowercase().as_str() {
        "confirm" => Intent::Confirm,
        "reschedule" => Intent::Reschedule,
        "cancel" => Intent::Cancel,
        "unclear" => Intent::Unclear,
        _ => return Err(invalid("unknown intent".to_string())),
    };
    let confidence = verdict.confidence;
    if !(confidence.is_finite() && (0.0..=1.0).contains(&confidence)) {
        return Err(invalid(format!("confidence {confidence} is not in [0, 1]")));
    }
    let intent = if confidence < CONFIDENCE_FLOOR {
        Intent::Unclear
    } else {
        intent
    };
    Ok(Classification {
        intent,
        confidence,
        source: SOURCE.to_string(),
    })
}

/// The error for a non-2xx answer. The body is not quoted: it may echo the text.
fn answer_error(answer: &Answer) -> ProviderError {
    if let Some(redirect) = answer.unexpected_redirect(PROVIDER) {
        return redirect;
    }
    let class = match answer.status {
        429 => ErrorClass::RateLimited {
            retry_after: transport::retry_after(&answer.headers),
        },
        500..=599 => ErrorClass::ServerError,
        _ => ErrorClass::ClientError,
    };
    ProviderError {
        class,
        message: format!("llm HTTP {}", answer.status),
        outcome_unknown: false,
    }
}

async fn classify_now(
    settings: Arc<LlmSettings>,
    text: String,
) -> Result<Classification, LlmError> {
    let url = endpoint(&settings.api_base)?;
    let body = request_body(&settings.model, &text);
    // A customer's words are personal data: the log gets their length, never the text.
    tracing::debug!(chars = text.chars().count(), model = %settings.model, "llm: classifying a reply");
    let client = transport::http_client(settings.timeout);
    let mut request = client
        .post(url.as_str())
        .timeout(settings.timeout)
        .insert_header((ACCEPT, "application/json"));
    if let Some(key) = &settings.api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send_json(&body).await.map_err(|e| {
        let error = transport::transport_error(PROVIDER, &e, false);
        if error.class == ErrorClass::Timeout {
            LlmError::Timeout(settings.timeout)
        } else {
            LlmError::Provider(error)
        }
    })?;
    let answer = Answer::read(response).await;
    if !answer.is_success() {
        return Err(LlmError::Provider(answer_error(&answer)));
    }
    let body = answer
        .body
        .as_deref()
        .map_err(|e| LlmError::InvalidAnswer(format!("unreadable answer: {e}")))?;
    parse_answer(body)
}

/// The LLM classifier. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct LlmClient {
    settings: Arc<LlmSettings>,
}

impl LlmClient {
    pub fn new(settings: LlmSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// Asks the model about `text`. Must be polled inside a `LocalSet` (any actix
    /// arbiter); dropping the future aborts the request.
    pub fn classify_text(
        &self,
        text: &str,
    ) -> BoxFuture<'static, Result<Classification, LlmError>> {
        let settings = Arc::clone(&self.settings);
        let text = text.to_string();
        Box::pin(async move {
            let task = transport::on_local_set(
                PROVIDER,
                move || async move { Ok(classify_now(settings, text).await) },
                false,
            );
            task.await.map_err(LlmError::Provider)?
        })
    }
}

impl Classifier for LlmClient {
    fn classify(&self, text: String) -> BoxFuture<'static, Result<Classification, ProviderError>> {
        let call = self.classify_text(&text);
        Box::pin(async move { call.await.map_err(LlmError::into_provider_error) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_appends_chat_completions() {
        let at = |base: &str| {
            endpoint(&Url::parse(base).expect("url"))
                .expect("endpoint")
                .to_string()
        };
        assert_eq!(
            at("https://api.openai.com/v1"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            at("http://127.0.0.1:11434/v1/"),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
    }

    #[test]
    fn the_body_carries_only_the_text() {
        let body = request_body("gpt-test", "yes see you then");
        assert_eq!(body["model"], "gpt-test");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["response_format"]["type"], "json_object");
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][0]["content"], SYSTEM_PROMPT);
        assert_eq!(body["messages"][1]["role"], "user");
        assert_eq!(body["messages"][1]["content"], "yes see you then");
        let long = "a".repeat(5000);
        let body = request_body("m", &long);
        let sent = body["messages"][1]["content"].as_str().unwrap_or_default();
        assert_eq!(sent.chars().count(), MAX_TEXT_CHARS);
    }

    fn completion(content: &str) -> Vec<u8> {
        json!({"id": "c1", "object": "chat.completion",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop"}]})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn valid_answers_parse() {
        let c = parse_answer(&completion(r#"{"intent": "confirm", "confidence": 0.93}"#))
            .expect("valid");
        assert_eq!(
            (c.intent, c.confidence, c.source.as_str()),
            (Intent::Confirm, 0.93, "llm")
        );
        let c = parse_answer(&completion(
            "```json\n{\"intent\":\"Cancel\",\"confidence\":1}\n```",
        ))
        .expect("fenced");
        assert_eq!(c.intent, Intent::Cancel);
        let c = parse_answer(&completion(
            r#"{"intent": "reschedule", "confidence": 0.5}"#,
        ))
        .expect("weak");
        assert_eq!(c.intent, Intent::Unclear, "below the floor");
        assert_eq!(c.confidence, 0.5);
    }

    #[test]
    fn invalid_answers_are_errors() {
        for content in [
            "yes",
            r#"{"intent": "maybe", "confidence": 0.9}"#,
            r#"{"intent": "confirm", "confidence": 1.5}"#,
            r#"{"intent": "confirm", "confidence": -0.1}"#,
            r#"{"intent": "confirm", "confidence": "high"}"#,
            r#"{"intent": "confirm"}"#,
        ] {
            let err = parse_answer(&completion(content)).expect_err(content);
            assert!(
                matches!(err, LlmError::InvalidAnswer(_)),
                "{content}: {err}"
            );
        }
        assert!(parse_answer(b"not json").is_err());
        assert!(parse_answer(br#"{"choices": []}"#).is_err());
        assert!(parse_answer(br#"{"choices": [{"message": {"content": null}}]}"#).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let settings = LlmSettings {
            api_base: Url::parse("https://api.example.com/v1").expect("url"),
            api_key: Some("sk-very-secret".to_string()),
            model: "m".to_string(),
            timeout: LLM_TIMEOUT,
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
    }
}
