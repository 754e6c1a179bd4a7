package transport

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// Handler is the plugin side of the contract; the SDK implements it.
type Handler interface {
	Describe() Manifest
	// Configure returns the plugin's complaint about its configuration.
	Configure(path string) error
	// Calls serves one Calls stream until it ends.
	Calls(s PluginCalls) error
	// Notify takes one batch of notifications; it must not block long.
	Notify(notes []Note)
	// Metrics returns the plugin's metrics (empty Data: none).
	Metrics() (Metrics, error)
	// Reopen reopens the files the plugin writes.
	Reopen() error
}

// ServerCalls is the plugin end of the Calls stream. Recv is for one
// goroutine; Send is safe for concurrent use.
type ServerCalls struct {
	s  pb.Plugin_CallsServer
	mu sync.Mutex
	m  pb.Event
}

// Recv receives the next event into e.
func (s *ServerCalls) Recv(e *Event) error {
	s.m.Reset()
	if err := s.s.RecvMsg(&s.m); err != nil {
		return err
	}
	eventFromPB(&s.m, e)
	return nil
}

// Send sends one reply.
func (s *ServerCalls) Send(r *Reply) error {
	m := replyToPB(r)
	m.Records = recordsToPB(&r.Records)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s.Send(m)
}

// Context is the stream's context; it ends with the stream.
func (s *ServerCalls) Context() context.Context { return s.s.Context() }

type server struct {
	pb.UnimplementedPluginServer
	h Handler
}

func (s *server) Describe(context.Context, *pb.DescribeRequest) (*pb.Manifest, error) {
	return manifestToPB(s.h.Describe()), nil
}

func (s *server) Configure(_ context.Context, r *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	if err := s.h.Configure(r.ConfigPath); err != nil {
		return &pb.ConfigureResponse{Error: contract.ValidUTF8(err.Error())}, nil
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Calls(stream pb.Plugin_CallsServer) error {
	return s.h.Calls(&ServerCalls{s: stream})
}

// Notify takes the batches of the Notify stream as they came (rawCodec,
// NewGRPCServer) and decodes them itself (decodeNotes).
func (s *server) Notify(stream pb.Plugin_NotifyServer) error {
	var notes []Note
	var m rawRecv
	for {
		err := stream.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&pb.NotifyResponse{})
		}
		if err == nil {
			notes, err = decodeNotes(m.b, notes[:0])
		}
		if err != nil {
			return err
		}
		s.h.Notify(notes)
	}
}
