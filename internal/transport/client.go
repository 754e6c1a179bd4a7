package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// Client is the host's view of one plugin process.
type Client struct {
	pb pb.PluginClient
}

// ConfigError is a plugin's refusal of its configuration.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// Describe asks for the plugin's manifest.
func (c *Client) Describe(ctx context.Context) (Manifest, error) {
	m, err := c.pb.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return Manifest{}, fmt.Errorf("describe: %w", err)
	}
	return manifestFromPB(m)
}

// Configure passes the plugin its configuration file path. A *ConfigError
// carries the plugin's own message.
func (c *Client) Configure(ctx context.Context, path string) error {
	r, err := c.pb.Configure(ctx, &pb.ConfigureRequest{ConfigPath: path})
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	if r.Error != "" {
		return &ConfigError{Msg: r.Error}
	}
	return nil
}

// CallStream is the host end of the Calls stream. Send is safe for
// concurrent use and never waits on the stream: it encodes the event and
// queues it for the stream's writer goroutine, so that a plugin that stops
// reading (its flow-control window full, where gRPC's own Send waits)
// cannot hold a caller past its deadline; with maxQueuedEvents waiting,
// Send fails instead, as the framed socket's does with a frame's worth
// queued. Recv runs in one goroutine.
type CallStream struct {
	s pb.Plugin_CallsClient
	m pb.Reply

	mu     sync.Mutex
	err    error           // why Send fails: the writer's error, or errCallsClosed
	queue  chan mem.Buffer // encoded events for the writer; closed by CloseSend
	closed bool
}

// maxQueuedEvents bounds the events waiting for a plugin that does not
// read them.
const maxQueuedEvents = 4096

// Errors of a Send that queued nothing.
var (
	errCallsClosed  = errors.New("calls stream: closed")
	errCallsBacklog = errors.New("calls stream: the plugin is not reading (events queued)")
)

// Calls opens the per-request stream; it lives until ctx ends, and so
// does its writer goroutine (or until CloseSend and the queue sent).
func (c *Client) Calls(ctx context.Context) (*CallStream, error) {
	s, err := c.pb.Calls(ctx, grpc.ForceCodecV2(newRawCodec()))
	if err != nil {
		return nil, fmt.Errorf("open calls stream: %w", err)
	}
	cs := &CallStream{s: s, queue: make(chan mem.Buffer, maxQueuedEvents)}
	go cs.write()
	return cs, nil
}

// Send queues one event, encoded now (the event's slices may be reused
// once it returns).
func (s *CallStream) Send(e *Event) error {
	b, err := proto.Marshal(eventToPB(e))
	if err != nil {
		return fmt.Errorf("calls stream: encode: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	select {
	case s.queue <- mem.SliceBuffer(b):
		return nil
	default:
		return errCallsBacklog
	}
}

// write is the stream's writer: it sends the queued events in order until
// the queue is closed (then it ends the host's side of the stream), a
// send fails or the stream ends.
func (s *CallStream) write() {
	done := s.s.Context().Done()
	for {
		select {
		case b, ok := <-s.queue:
			if !ok {
				_ = s.s.CloseSend()
				return
			}
			if err := s.s.SendMsg(&rawMessage{b}); err != nil {
				s.fail(fmt.Errorf("calls stream: send: %w", err))
				return
			}
		case <-done:
			s.fail(fmt.Errorf("calls stream: %w", s.s.Context().Err()))
			return
		}
	}
}

// fail makes later Sends fail with err.
func (s *CallStream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// Recv receives the next reply into r.
func (s *CallStream) Recv(r *Reply) error {
	s.m.Reset()
	if err := s.s.RecvMsg(&s.m); err != nil {
		return err
	}
	replyFromPB(&s.m, r)
	return recordsFromPB(s.m.Records, &r.Records)
}

// CloseSend ends the host's side of the stream once the events queued
// are sent; it does not wait for that.
func (s *CallStream) CloseSend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.err = cmp.Or(s.err, errCallsClosed)
		close(s.queue)
	}
	return nil
}

// NoteStream is the host end of the Notify stream; not for concurrent use.
type NoteStream struct {
	s pb.Plugin_NotifyClient
}

// Notify opens the notification stream.
func (c *Client) Notify(ctx context.Context) (*NoteStream, error) {
	s, err := c.pb.Notify(ctx, grpc.ForceCodecV2(newRawCodec()))
	if err != nil {
		return nil, fmt.Errorf("open notify stream: %w", err)
	}
	return &NoteStream{s: s}, nil
}

// Send sends the batch nb and empties it. Its bytes go in a buffer of
// gRPC's pool, which gRPC gives back once it has written them.
func (s *NoteStream) Send(nb *NoteBatch) error {
	buf := mem.Copy(nb.b, mem.DefaultBufferPool())
	nb.b, nb.n = nb.b[:0], 0
	return s.s.SendMsg(&rawMessage{buf})
}

// Close ends the stream and waits for the plugin to have read it.
func (s *NoteStream) Close() error {
	_, err := s.s.CloseAndRecv()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
