//! The audit queue and its poison queue, through the official `azure_storage_queue` 1.x client
//! (Put Message, Get Messages, Peek Messages, Update Message, Delete Message, Get Queue
//! Properties). Authentication: an Entra ID token (https), a SAS in the URL, or the account key
//! through the same Shared Key signing policy the blob sink uses (Azurite's well-known account).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ExponentialRetryOptions, RetryOptions, Transport, Url};
use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders, QueueClientPeekMessagesOptions,
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions,
    QueueClientUpdateMessageOptions, QueueMessage,
};
use azure_storage_queue::{QueueClient, QueueClientOptions};

use super::config::{QueueAuth, QueueTarget};
use crate::report::sink::blob::EMULATOR_API_VERSION;
use crate::report::sink::redact::Redactor;
use crate::report::sink::shared_key::SharedKeyPolicy;

/// At most this many messages per Get / Peek Messages call (service limit).
pub const MAX_BATCH: u32 = 32;

/// A queue operation that failed. Never carries a key or SAS signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{operation} on {queue} failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct QueueError {
    pub operation: &'static str,
    /// Queue URL without credentials.
    pub queue: String,
    pub status: Option<u16>,
    pub message: String,
}

/// A message taken from the queue (invisible to others until its visibility timeout ends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub id: String,
    pub pop_receipt: String,
    /// 1 on the first delivery.
    pub dequeue_count: u32,
    /// The message text as stored (base64 of the JSON document for linkguard's own messages).
    pub text: String,
}

/// A message seen with Peek Messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peeked {
    pub id: String,
    pub dequeue_count: u32,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct QueueOptions {
    pub retry: RetryOptions,
    pub transport: Option<Transport>,
    /// x-ms-version; `None` is the SDK default, or one Azurite 3.35 accepts on loopback.
    pub api_version: Option<String>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(500),
                max_retries: 6,
                max_total_elapsed: azure_core::time::Duration::seconds(45),
                max_delay: azure_core::time::Duration::seconds(10),
            }),
            transport: None,
            api_version: None,
        }
    }
}

impl QueueOptions {
    /// Exponential retries: at most `max_retries` per request, starting after `initial_delay`.
    pub fn with_retries(
        mut self,
        max_retries: u32,
        initial_delay: Duration,
        max_total: Duration,
    ) -> Self {
        let to = |d: Duration| {
            azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::MAX)
        };
        self.retry = RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: to(initial_delay),
            max_retries,
            max_total_elapsed: to(max_total),
            max_delay: to(initial_delay.saturating_mul(8)),
        });
        self
    }
}

/// The audit queue (`<name>`) and its poison queue (`<name>-poison`).
pub struct AuditQueue {
    main: QueueClient,
    poison: QueueClient,
    name: String,
    poison_name: String,
    main_url: Url,
    poison_url: Url,
    redactor: Redactor,
}

impl fmt::Debug for AuditQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditQueue")
            .field("queue", &self.main_url.as_str())
            .finish()
    }
}

fn dequeue_count(n: Option<i64>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(1)
}

impl AuditQueue {
    pub fn new(
        target: &QueueTarget,
        credential: Option<Arc<dyn TokenCredential>>,
        options: QueueOptions,
    ) -> Result<Self, String> {
        let main_url = target.queue_url(&target.queue)?;
        let poison_name = target.poison_queue();
        let poison_url = target.queue_url(&poison_name)?;
        let mut client_options = QueueClientOptions::default();
        client_options.client_options.retry = options.retry;
        if let Some(t) = options.transport {
            client_options.client_options.transport = Some(t);
        }
        if let Some(v) = options.api_version {
            client_options.version = v;
        } else if target.emulator {
            client_options.version = EMULATOR_API_VERSION.to_string();
        }
        let (credential, sas, secrets) = match &target.auth {
            QueueAuth::Token => {
                let Some(c) = credential else {
                    return Err(format!(
                        "{target} needs an Entra ID token credential (managed or workload identity), and none was configured"
                    ));
                };
                (Some(c), None, Vec::new())
            }
            QueueAuth::Sas(sas) => (
                None,
                Some(sas.secret().to_string()),
                vec![sas.secret().to_string()],
            ),
            QueueAuth::SharedKey { account, key } => {
                client_options
                    .client_options
                    .per_try_policies
                    .push(Arc::new(SharedKeyPolicy::new(account.clone(), key.clone())));
                (None, None, vec![key.secret().to_string()])
            }
        };
        let redactor = Redactor::new(secrets);
        let client = |url: &Url| {
            let mut u = url.clone();
            if let Some(sas) = &sas {
                u.set_query(Some(sas));
            }
            QueueClient::new(u, credential.clone(), Some(client_options.clone())).map_err(|e| {
                format!(
                    "cannot build the queue client: {}",
                    redactor.redact(&e.to_string())
                )
            })
        };
        Ok(Self {
            main: client(&main_url)?,
            poison: client(&poison_url)?,
            name: target.queue.clone(),
            poison_name,
            main_url,
            poison_url,
            redactor,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn poison_name(&self) -> &str {
        &self.poison_name
    }
    /// The queue URL, safe to log.
    pub fn location(&self) -> &str {
        self.main_url.as_str()
    }

    fn error(&self, operation: &'static str, poison: bool, e: &azure_core::Error) -> QueueError {
        let status = e.http_status().map(u16::from);
        let message = match e.kind() {
            ErrorKind::HttpResponse { error_code, .. } => {
                let code = error_code.clone().unwrap_or_else(|| "error".into());
                match status {
                    Some(403) => format!(
                        "{code} (the identity needs `Storage Queue Data Message Sender` to enqueue and `Storage Queue Data Message Processor` / `Contributor` to consume, or the SAS needs add, read, process, update)"
                    ),
                    Some(401) => format!("{code} (check the account key or SAS)"),
                    _ => code,
                }
            }
            _ => {
                let mut parts = vec![e.to_string()];
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    parts.push(s.to_string());
                    source = s.source();
                }
                format!("{} (is the queue endpoint reachable?)", parts.join(": "))
            }
        };
        QueueError {
            operation,
            queue: if poison {
                self.poison_url.to_string()
            } else {
                self.main_url.to_string()
            },
            status,
            message: self.redactor.redact(&message),
        }
    }

    async fn create(&self, client: &QueueClient, poison: bool) -> Result<(), QueueError> {
        match client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).as_deref() == Some("QueueAlreadyExists") => Ok(()),
            Err(e) => Err(self.error("create queue", poison, &e)),
        }
    }

    /// Creates the queue and its poison queue when missing.
    pub async fn ensure_exists(&self) -> Result<(), QueueError> {
        self.create(&self.main, false).await?;
        self.create(&self.poison, true).await
    }

    /// Put Message: `text` as is, living `ttl` (at least one second).
    pub async fn send(&self, text: &str, ttl: Duration) -> Result<String, QueueError> {
        self.send_to(&self.main, false, text, ttl).await
    }

    async fn send_to(
        &self,
        client: &QueueClient,
        poison: bool,
        text: &str,
        ttl: Duration,
    ) -> Result<String, QueueError> {
        let ttl = i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX);
        let body = QueueMessage {
            message_text: Some(text.to_string()),
        };
        let content = body
            .try_into()
            .map_err(|e: azure_core::Error| self.error("encode message", poison, &e))?;
        let options = QueueClientSendMessageOptions {
            message_time_to_live: Some(ttl),
            ..Default::default()
        };
        let rsp = client
            .send_message(content, Some(options))
            .await
            .map_err(|e| self.error("Put Message", poison, &e))?;
        let sent = rsp
            .into_model()
            .and_then(|m| m.into_message())
            .map_err(|e| self.error("Put Message", poison, &e))?;
        Ok(sent.message_id.unwrap_or_default())
    }

    /// Get Messages: up to `max` (1-32) messages, invisible to others for `visibility`.
    pub async fn receive(
        &self,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1)),
            visibility_timeout: Some(
                i32::try_from(visibility.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            ..Default::default()
        };
        let rsp = self
            .main
            .receive_messages(Some(options))
            .await
            .map_err(|e| self.error("Get Messages", false, &e))?;
        let list = rsp
            .into_model()
            .map_err(|e| self.error("Get Messages", false, &e))?;
        Ok(list
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(Received {
                    id: m.message_id?,
                    pop_receipt: m.pop_receipt?,
                    dequeue_count: dequeue_count(m.dequeue_count),
                    text: m.message_text.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Peek Messages on the queue (`poison` false) or the poison queue: up to 32, no side effect.
    pub async fn peek(&self, poison: bool, max: u32) -> Result<Vec<Peeked>, QueueError> {
        let client = if poison { &self.poison } else { &self.main };
        let options = QueueClientPeekMessagesOptions {
            number_of_messages: Some(i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1)),
            ..Default::default()
        };
        let rsp = match client.peek_messages(Some(options)).await {
            Ok(r) => r,
            Err(e) if error_code(&e).as_deref() == Some("QueueNotFound") => return Ok(Vec::new()),
            Err(e) => return Err(self.error("Peek Messages", poison, &e)),
        };
        let list = rsp
            .into_model()
            .map_err(|e| self.error("Peek Messages", poison, &e))?;
        Ok(list
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|m| Peeked {
                id: m.message_id.unwrap_or_default(),
                dequeue_count: dequeue_count(m.dequeue_count),
                text: m.message_text.unwrap_or_default(),
            })
            .collect())
    }

    /// Approximate number of messages in the queue (visible or not); 0 when it does not exist.
    pub async fn approximate_count(&self, poison: bool) -> Result<u64, QueueError> {
        let client = if poison { &self.poison } else { &self.main };
        match client.get_properties(None).await {
            Ok(rsp) => Ok(rsp
                .approximate_messages_count()
                .map_err(|e| self.error("Get Queue Properties", poison, &e))?
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0)),
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(0),
            Err(e) => Err(self.error("Get Queue Properties", poison, &e)),
        }
    }

    /// Delete Message (done with it). A message already gone (404) is success.
    pub async fn delete(&self, id: &str, pop_receipt: &str) -> Result<(), QueueError> {
        match self.main.delete_message(id, pop_receipt, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(()),
            Err(e) => Err(self.error("Delete Message", false, &e)),
        }
    }

    /// Update Message: visible again after `visibility` (0 = now). Returns the new pop receipt.
    pub async fn set_visibility(
        &self,
        id: &str,
        pop_receipt: &str,
        visibility: Duration,
    ) -> Result<String, QueueError> {
        let secs = i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX);
        let rsp = self
            .main
            .update_message(
                id,
                pop_receipt,
                secs,
                Some(QueueClientUpdateMessageOptions::default()),
            )
            .await
            .map_err(|e| self.error("Update Message", false, &e))?;
        let receipt = rsp
            .headers()
            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                "x-ms-popreceipt",
            ))
            .map(str::to_string);
        receipt.ok_or_else(|| QueueError {
            operation: "Update Message",
            queue: self.main_url.to_string(),
            status: None,
            message: "the response carried no x-ms-popreceipt".into(),
        })
    }

    /// Moves a message to the poison queue the way the Functions host does: a copy of its text
    /// goes to `<queue>-poison` (created when missing), then the original is deleted.
    pub async fn move_to_poison(
        &self,
        message: &Received,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        match self.send_to(&self.poison, true, &message.text, ttl).await {
            Err(e) if e.status == Some(404) => {
                self.create(&self.poison, true).await?;
                self.send_to(&self.poison, true, &message.text, ttl).await?;
            }
            other => {
                other?;
            }
        }
        self.delete(&message.id, &message.pop_receipt).await
    }
}

fn error_code(e: &azure_core::Error) -> Option<String> {
    match e.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
        _ => None,
    }
}
