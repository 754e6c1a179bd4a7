// Package http1 is Capuchin's one HTTP/1.1 framing implementation (RFC 9112),
// shared by the host and the plugin SDK: a strict request-head reader, the
// request and response body readers (Content-Length, chunked, close-delimited),
// a response-head reader for proxies, HeadEnd (where a head in a buffer ends,
// by the readers' rules), and the one response-head writer, ResponseHead
// (status line and reason phrase, Date, Server, framing, Connection; error
// pages and 100 Continue go through it), with a chunked body writer.
//
// The reader is strict where leniency could let a front end and a back end
// disagree about where a message ends (request smuggling):
//
//   - lines end in CRLF; a bare LF or a bare CR is an error;
//   - up to 64 empty lines before a request line (CRLF, or a bare LF) are
//     skipped (RFC 9112 §2.2); a peer that closes after empty lines only
//     closed idle;
//   - obs-fold (a header line starting with SP or HTAB) is an error;
//   - whitespace between a field name and its colon is an error;
//   - control bytes other than HTAB in a field value are an error;
//   - Content-Length together with Transfer-Encoding is an error, as are
//     differing Content-Length values and a Transfer-Encoding whose last coding
//     is not chunked;
//   - in a response, Transfer-Encoding must be a single chunked (a proxy
//     cannot pass another coding on) and must not be in an HTTP/1.0 one;
//   - HTTP/1.1 requests need exactly one Host field;
//   - the request-target is visible ASCII without a fragment; origin-form,
//     absolute-form (http and https, no userinfo), asterisk-form for OPTIONS
//     only and authority-form (host:port) for CONNECT only;
//   - HTTP/1.x with x > 1 is read as HTTP/1.1; other versions are 505;
//   - a chunk-size line is 1*HEXDIG (at most 15 digits after leading
//     zeros, as a Content-Length is at most 18) with well-formed extensions;
//     whitespace after the size without ";" is an error. Chunk lines and
//     trailer lines must fit in the bufio.Reader's buffer.
//
// Every protocol error is an *Error carrying the status a server should answer
// with; after one the connection must be closed.
//
// A parsed head costs one allocation: the head bytes are copied into a single
// string and every field is a substring of it.
package http1
