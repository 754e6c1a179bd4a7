package transport

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// Operator calls: Metrics (a scrape of the host's MetricsURL) and Reopen
// (SIGUSR1 to the host). Both are unary and optional: a plugin that does not
// implement them (one in another language, say) answers Unimplemented,
// which the host reads as "no metrics" and "nothing to reopen".

// ErrUnimplemented is the error of an operator call the plugin does not
// implement.
var ErrUnimplemented = errors.New("not implemented by the plugin")

// Metrics is a plugin's metrics in a Prometheus exposition format.
type Metrics struct {
	ContentType string // the format's media type, as expfmt names it
	Data        []byte
}

// Metrics asks the plugin for its metrics.
func (c *Client) Metrics(ctx context.Context) (Metrics, error) {
	r, err := c.pb.Metrics(ctx, &pb.MetricsRequest{})
	if err != nil {
		return Metrics{}, opError("metrics", err)
	}
	return Metrics{ContentType: r.ContentType, Data: r.Data}, nil
}

// Reopen asks the plugin to reopen the files it writes.
func (c *Client) Reopen(ctx context.Context) error {
	r, err := c.pb.Reopen(ctx, &pb.ReopenRequest{})
	if err != nil {
		return opError("reopen", err)
	}
	if r.Error != "" {
		return fmt.Errorf("reopen: %s", r.Error)
	}
	return nil
}

func opError(what string, err error) error {
	if status.Code(err) == codes.Unimplemented {
		return ErrUnimplemented
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *server) Metrics(context.Context, *pb.MetricsRequest) (*pb.MetricsResponse, error) {
	m, err := s.h.Metrics()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "metrics: %v", err)
	}
	return &pb.MetricsResponse{ContentType: m.ContentType, Data: m.Data}, nil
}

func (s *server) Reopen(context.Context, *pb.ReopenRequest) (*pb.ReopenResponse, error) {
	if err := s.h.Reopen(); err != nil {
		return &pb.ReopenResponse{Error: contract.ValidUTF8(err.Error())}, nil
	}
	return &pb.ReopenResponse{}, nil
}
