// Package keda serves KEDA's external scaler gRPC protocol: a ScaledObject
// whose `external` trigger names an OpportunisticScaler gets that scaler's
// desired replicas as its metric, with target 1 (AverageValue), so the HPA
// KEDA makes lands exactly on opportunist's number.
package keda

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/opportunist/opportunist/internal/keda/externalscaler"
)

// MetricName is the metric a trigger reports; KEDA prefixes it per trigger.
const MetricName = "opportunist-desired-replicas"

// Decisions is what the server reads: a scaler's last desired count by
// "namespace/name" (controller.DecisionStore).
type Decisions interface {
	Desired(key string) (int32, bool)
}

// Scaler implements pb.ExternalScalerServer over the controller's decisions.
type Scaler struct {
	pb.UnimplementedExternalScalerServer
	Decisions Decisions
	// Ready reports whether the capacity data is fresh; stale data is
	// refused (Unavailable), so KEDA keeps its last value or its fallback.
	Ready func() error
	// StreamInterval is how often StreamIsActive looks for a change.
	StreamInterval time.Duration
}

// scalerKey reads which OpportunisticScaler a trigger means: metadata
// `scaler: <name>` (in the ScaledObject's namespace) or `<namespace>/<name>`.
func scalerKey(ref *pb.ScaledObjectRef) (string, error) {
	if ref == nil {
		return "", status.Error(codes.InvalidArgument, "no ScaledObject reference in the request")
	}
	name := strings.TrimSpace(ref.GetScalerMetadata()["scaler"])
	if name == "" {
		return "", status.Errorf(codes.InvalidArgument, "ScaledObject %s/%s: its external trigger's metadata must name the OpportunisticScaler: scaler: <name> (docs/keda.md)", ref.GetNamespace(), ref.GetName())
	}
	if strings.Contains(name, "/") {
		return name, nil
	}
	return ref.GetNamespace() + "/" + name, nil
}

// desired is the scaler's last desired count, or a gRPC error saying why not.
func (s *Scaler) desired(ref *pb.ScaledObjectRef) (int32, error) {
	key, err := scalerKey(ref)
	if err != nil {
		return 0, err
	}
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			return 0, status.Errorf(codes.Unavailable, "capacity data is not fresh (%v); no answer rather than an old one", err)
		}
	}
	d, ok := s.Decisions.Desired(key)
	if !ok {
		return 0, status.Errorf(codes.NotFound, "no decision for OpportunisticScaler %s: create it (set dryRun: true, KEDA writes the replicas), and run opportunist with the controller on", key)
	}
	return d, nil
}

// IsActive: the workload is active while its scaler wants a replica.
func (s *Scaler) IsActive(_ context.Context, ref *pb.ScaledObjectRef) (*pb.IsActiveResponse, error) {
	d, err := s.desired(ref)
	if err != nil {
		return nil, err
	}
	return &pb.IsActiveResponse{Result: d > 0}, nil
}

// StreamIsActive sends the activity now and on every change, until KEDA
// hangs up.
func (s *Scaler) StreamIsActive(ref *pb.ScaledObjectRef, stream grpc.ServerStreamingServer[pb.IsActiveResponse]) error {
	interval := s.StreamInterval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sent, last := false, false
	for {
		d, err := s.desired(ref)
		if status.Code(err) == codes.InvalidArgument {
			return err
		}
		// A transient error (stale data, no decision yet) sends nothing:
		// KEDA keeps the last activity it was told.
		if err == nil && (!sent || (d > 0) != last) {
			if err := stream.Send(&pb.IsActiveResponse{Result: d > 0}); err != nil {
				return err
			}
			sent, last = true, d > 0
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-tick.C:
		}
	}
}

// GetMetricSpec: one metric, target 1 replica per replica.
func (s *Scaler) GetMetricSpec(_ context.Context, ref *pb.ScaledObjectRef) (*pb.GetMetricSpecResponse, error) {
	if _, err := scalerKey(ref); err != nil {
		return nil, err
	}
	return &pb.GetMetricSpecResponse{MetricSpecs: []*pb.MetricSpec{{MetricName: MetricName, TargetSize: 1, TargetSizeFloat: 1}}}, nil
}

// GetMetrics: the desired count, in both the int and the float field.
func (s *Scaler) GetMetrics(_ context.Context, req *pb.GetMetricsRequest) (*pb.GetMetricsResponse, error) {
	d, err := s.desired(req.GetScaledObjectRef())
	if err != nil {
		return nil, err
	}
	name := req.GetMetricName()
	if name == "" {
		name = MetricName
	}
	return &pb.GetMetricsResponse{MetricValues: []*pb.MetricValue{{MetricName: name, MetricValue: int64(d), MetricValueFloat: float64(d)}}}, nil
}

// TLSOptions are the server's side of KEDA's trigger options enableTLS,
// caCert, tlsClientCert and tlsClientKey: a serving certificate, and when
// ClientCAFile is set, client certificates signed by it are required.
type TLSOptions struct {
	CertFile, KeyFile, ClientCAFile string
}

// ServerCredentials builds the gRPC transport credentials; nil for
// plaintext (no certificate given).
func (o TLSOptions) ServerCredentials() (credentials.TransportCredentials, error) {
	if o.CertFile == "" && o.KeyFile == "" {
		if o.ClientCAFile != "" {
			return nil, fmt.Errorf("--keda-scaler-client-ca-file needs --keda-scaler-tls-cert-file and --keda-scaler-tls-private-key-file: client certificates are checked only over TLS")
		}
		return nil, nil
	}
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, fmt.Errorf("give both --keda-scaler-tls-cert-file and --keda-scaler-tls-private-key-file, or neither")
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the KEDA scaler's TLS certificate: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --keda-scaler-client-ca-file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--keda-scaler-client-ca-file %s holds no PEM certificate", o.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(cfg), nil
}

// Serve serves s on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, s *Scaler, creds credentials.TransportCredentials) error {
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	pb.RegisterExternalScalerServer(srv, s)
	go func() {
		<-ctx.Done()
		// A StreamIsActive stays open as long as KEDA does: give unary calls
		// a moment, then close every connection (KEDA reconnects).
		t := time.AfterFunc(2*time.Second, srv.Stop)
		srv.GracefulStop()
		t.Stop()
	}()
	return srv.Serve(ln)
}
