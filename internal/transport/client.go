package transport

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

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

// CallStream is the host end of the Calls stream. Send must not be called
// concurrently; Recv may run alongside Send in one other goroutine.
type CallStream struct {
	s pb.Plugin_CallsClient
	m pb.Reply
}

// Calls opens the per-request stream; it lives until ctx ends.
func (c *Client) Calls(ctx context.Context) (*CallStream, error) {
	s, err := c.pb.Calls(ctx)
	if err != nil {
		return nil, fmt.Errorf("open calls stream: %w", err)
	}
	return &CallStream{s: s}, nil
}

// Send sends one event.
func (s *CallStream) Send(e *Event) error { return s.s.Send(eventToPB(e)) }

// Recv receives the next reply into r.
func (s *CallStream) Recv(r *Reply) error {
	s.m.Reset()
	if err := s.s.RecvMsg(&s.m); err != nil {
		return err
	}
	replyFromPB(&s.m, r)
	return recordsFromPB(s.m.Records, &r.Records)
}

// CloseSend ends the host's side of the stream.
func (s *CallStream) CloseSend() error { return s.s.CloseSend() }

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
