//! Errors of the SIP message layer, each knowing the status a server answers and whether the
//! connection must close.

/// Why a SIP message (or a byte stream) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// The header block exceeds the configured limit (no CRLFCRLF within it).
    #[error("message head larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// The announced body exceeds the configured limit.
    #[error("body of {len} bytes exceeds limit of {limit}")]
    BodyTooLarge { len: usize, limit: usize },
    /// Content-Length is not a decimal number.
    #[error("unparsable Content-Length")]
    BadContentLength,
    /// Content-Length is negative.
    #[error("negative Content-Length")]
    NegativeContentLength,
    /// Several Content-Length headers with different values.
    #[error("conflicting Content-Length headers")]
    ConflictingContentLength,
    /// Content-Length announces more bytes than the datagram holds.
    #[error("Content-Length larger than the message")]
    TruncatedBody,
    /// No blank line ends the header block.
    #[error("header block not terminated")]
    IncompleteHead,
    /// The request or status line is malformed.
    #[error("malformed start line")]
    BadStartLine,
    /// A SIP version other than SIP/2.0.
    #[error("unsupported SIP version")]
    UnsupportedVersion,
    /// A header line without a colon or with an invalid name.
    #[error("malformed header line {line}")]
    BadHeaderLine { line: usize },
    /// More header lines than the configured limit.
    #[error("too many header lines")]
    TooManyHeaders,
    /// A header required by RFC 3261 is missing.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header's value does not follow its grammar.
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    /// The Request-URI is malformed.
    #[error("malformed Request-URI")]
    BadRequestUri,
    /// The Request-URI scheme is not sip, sips or tel.
    #[error("unsupported Request-URI scheme")]
    UnsupportedScheme,
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match request method")]
    CSeqMismatch,
}

impl SipError {
    /// The status code and reason phrase a server answers with.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            SipError::HeadTooLarge { .. } => (513, "Message Too Large"),
            SipError::BodyTooLarge { .. } => (413, "Request Entity Too Large"),
            SipError::UnsupportedVersion => (505, "Version Not Supported"),
            SipError::UnsupportedScheme => (416, "Unsupported URI Scheme"),
            _ => (400, "Bad Request"),
        }
    }

    /// Whether the stream can no longer be framed, so the connection must be closed.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            SipError::HeadTooLarge { .. }
                | SipError::BodyTooLarge { .. }
                | SipError::BadContentLength
                | SipError::NegativeContentLength
                | SipError::ConflictingContentLength
        )
    }

    /// A `Warning` header value (RFC 3261 §20.43, code 399) explaining the error.
    pub fn warning(&self, agent: &str) -> String {
        format!("399 {agent} \"{self}\"")
    }
}
