package http1

import "fmt"

// Error is a protocol error found while reading a message. Status is the HTTP
// status a server answers with (400, 408, 413, 414, 431, 501, 505...).
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("http1: %d %s: %s", e.Status, StatusText(e.Status), e.Reason)
}

// Reused errors for the common cases, so that hostile input costs no allocation.
var (
	errBareLF        = &Error{400, "line not terminated by CRLF"}
	errBareCR        = &Error{400, "bare CR in message head"}
	errRequestLine   = &Error{400, "malformed request line"}
	errMethod        = &Error{400, "malformed method"}
	errTarget        = &Error{400, "malformed request target"}
	errVersion       = &Error{400, "malformed HTTP version"}
	errVersionNot1   = &Error{505, "HTTP version not supported"}
	errFieldLine     = &Error{400, "malformed header field"}
	errFieldName     = &Error{400, "malformed header field name"}
	errSpaceColon    = &Error{400, "whitespace before colon in header field"}
	errObsFold       = &Error{400, "obsolete line folding in header field"}
	errFieldValue    = &Error{400, "control character in header field value"}
	errHeadTooLarge  = &Error{431, "request header fields too large"}
	errTooManyFields = &Error{431, "too many header fields"}
	errURITooLong    = &Error{414, "request target too long"}
	errNoHost        = &Error{400, "HTTP/1.1 request without Host"}
	errManyHosts     = &Error{400, "more than one Host field"}
	errBadHost       = &Error{400, "malformed Host field"}
	errCLAndTE       = &Error{400, "both Content-Length and Transfer-Encoding"}
	errBadCL         = &Error{400, "malformed Content-Length"}
	errDifferentCL   = &Error{400, "differing Content-Length values"}
	errTENotChunked  = &Error{400, "chunked is not the last transfer coding"}
	errTEUnknown     = &Error{501, "transfer coding not implemented"}
	errTEHTTP10      = &Error{400, "Transfer-Encoding in an HTTP/1.0 message"}
	errExpectation   = &Error{417, "unsupported expectation"}
	errChunkSize     = &Error{400, "malformed chunk size"}
	errChunkExt      = &Error{400, "malformed chunk extension"}
	errChunkEnd      = &Error{400, "chunk data not followed by CRLF"}
	errTrailer       = &Error{400, "malformed trailer field"}
	errBodyTooLarge  = &Error{413, "request body too large"}
	errStatusLine    = &Error{502, "malformed status line"}
	errTEResponse    = &Error{502, "transfer coding other than a single chunked in a response"}
)

// ErrBodyTooLarge is returned by a body reader when a body goes over its limit.
var ErrBodyTooLarge error = errBodyTooLarge

// StatusOf returns the status a server should answer err with: the status of
// an *Error, otherwise 400.
func StatusOf(err error) int {
	if e, ok := err.(*Error); ok {
		return e.Status
	}
	return 400
}
