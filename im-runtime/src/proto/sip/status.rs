//! Status codes as an open newtype (RFC 3261 §21 and extensions).

use std::fmt;

/// A SIP status code, 100..=699. Open: codes without a constant still round-trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $reason:literal;)*) => {
        impl StatusCode {
            $( $(#[$doc])* pub const $name: StatusCode = StatusCode($code); )*

            /// The RFC's reason phrase for known codes, else a generic one for the class.
            pub fn default_reason(self) -> &'static str {
                match self.0 {
                    $( $code => $reason, )*
                    100..=199 => "Provisional",
                    200..=299 => "Success",
                    300..=399 => "Redirection",
                    400..=499 => "Client Error",
                    500..=599 => "Server Error",
                    _ => "Global Failure",
                }
            }
        }
    };
}

codes! {
    /// 100 Trying
    TRYING = 100, "Trying";
    /// 180 Ringing
    RINGING = 180, "Ringing";
    /// 183 Session Progress
    SESSION_PROGRESS = 183, "Session Progress";
    /// 200 OK
    OK = 200, "OK";
    /// 202 Accepted (RFC 3265)
    ACCEPTED = 202, "Accepted";
    /// 400 Bad Request
    BAD_REQUEST = 400, "Bad Request";
    /// 401 Unauthorized
    UNAUTHORIZED = 401, "Unauthorized";
    /// 403 Forbidden
    FORBIDDEN = 403, "Forbidden";
    /// 404 Not Found
    NOT_FOUND = 404, "Not Found";
    /// 405 Method Not Allowed
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    /// 406 Not Acceptable
    NOT_ACCEPTABLE = 406, "Not Acceptable";
    /// 408 Request Timeout
    REQUEST_TIMEOUT = 408, "Request Timeout";
    /// 413 Request Entity Too Large
    REQUEST_ENTITY_TOO_LARGE = 413, "Request Entity Too Large";
    /// 415 Unsupported Media Type
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    /// 416 Unsupported URI Scheme
    UNSUPPORTED_URI_SCHEME = 416, "Unsupported URI Scheme";
    /// 420 Bad Extension
    BAD_EXTENSION = 420, "Bad Extension";
    /// 423 Interval Too Brief
    INTERVAL_TOO_BRIEF = 423, "Interval Too Brief";
    /// 430 Flow Failed (RFC 5626 §11.5)
    FLOW_FAILED = 430, "Flow Failed";
    /// 439 First Hop Lacks Outbound Support (RFC 5626 §11.6)
    FIRST_HOP_LACKS_OUTBOUND_SUPPORT = 439, "First Hop Lacks Outbound Support";
    /// 480 Temporarily Unavailable
    TEMPORARILY_UNAVAILABLE = 480, "Temporarily Unavailable";
    /// 481 Call/Transaction Does Not Exist
    CALL_DOES_NOT_EXIST = 481, "Call/Transaction Does Not Exist";
    /// 483 Too Many Hops
    TOO_MANY_HOPS = 483, "Too Many Hops";
    /// 486 Busy Here
    BUSY_HERE = 486, "Busy Here";
    /// 487 Request Terminated
    REQUEST_TERMINATED = 487, "Request Terminated";
    /// 488 Not Acceptable Here
    NOT_ACCEPTABLE_HERE = 488, "Not Acceptable Here";
    /// 500 Server Internal Error
    SERVER_INTERNAL_ERROR = 500, "Server Internal Error";
    /// 501 Not Implemented
    NOT_IMPLEMENTED = 501, "Not Implemented";
    /// 503 Service Unavailable
    SERVICE_UNAVAILABLE = 503, "Service Unavailable";
    /// 505 Version Not Supported
    VERSION_NOT_SUPPORTED = 505, "Version Not Supported";
    /// 603 Decline
    DECLINE = 603, "Decline";
}

impl StatusCode {
    /// A status code from a number; `None` outside 100..=699.
    pub fn new(code: u16) -> Option<StatusCode> {
        (100..=699).contains(&code).then_some(StatusCode(code))
    }

    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// 1xx.
    pub fn is_provisional(self) -> bool {
        self.0 < 200
    }

    /// 2xx.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 2xx–6xx.
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<StatusCode> for u16 {
    fn from(c: StatusCode) -> u16 {
        c.0
    }
}
