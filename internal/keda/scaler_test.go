package keda

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/opportunist/opportunist/internal/keda/externalscaler"
)

type fakeDecisions struct {
	mu      sync.Mutex
	desired map[string]int32
}

func (f *fakeDecisions) Desired(key string) (int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.desired[key]
	return d, ok
}

func (f *fakeDecisions) set(key string, d int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.desired[key] = d
}

// serve starts the scaler on a loopback port and returns a client over
// the given credentials.
func serve(t *testing.T, s *Scaler, server credentials.TransportCredentials, client credentials.TransportCredentials) pb.ExternalScalerClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, s, server) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	if client == nil {
		client = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(client))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewExternalScalerClient(conn)
}

func ref(ns, name string, meta map[string]string) *pb.ScaledObjectRef {
	return &pb.ScaledObjectRef{Namespace: ns, Name: name, ScalerMetadata: meta}
}

func TestExternalScaler(t *testing.T) {
	decisions := &fakeDecisions{desired: map[string]int32{"batch/worker": 12, "batch/idle": 0, "other/shared": 3}}
	var stale error
	c := serve(t, &Scaler{Decisions: decisions, Ready: func() error { return stale }}, nil, nil)
	ctx := context.Background()

	spec, err := c.GetMetricSpec(ctx, ref("batch", "worker-so", map[string]string{"scaler": "worker"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.MetricSpecs) != 1 || spec.MetricSpecs[0].TargetSizeFloat != 1 || spec.MetricSpecs[0].TargetSize != 1 || spec.MetricSpecs[0].MetricName != MetricName {
		t.Errorf("GetMetricSpec = %v, want one metric %s with target 1 (int and float)", spec, MetricName)
	}

	tests := []struct {
		name       string
		ref        *pb.ScaledObjectRef
		want       int32
		wantActive bool
		wantCode   codes.Code
		wantSays   string
	}{
		{name: "the scaler in the ScaledObject's namespace", ref: ref("batch", "worker-so", map[string]string{"scaler": "worker"}), want: 12, wantActive: true},
		{name: "namespace/name", ref: ref("batch", "so", map[string]string{"scaler": "other/shared"}), want: 3, wantActive: true},
		{name: "desired 0 is inactive", ref: ref("batch", "so", map[string]string{"scaler": "idle"}), want: 0},
		{name: "no scaler named", ref: ref("batch", "so", nil), wantCode: codes.InvalidArgument, wantSays: "scaler: <name>"},
		{name: "unknown scaler", ref: ref("batch", "so", map[string]string{"scaler": "nope"}), wantCode: codes.NotFound, wantSays: "batch/nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: tt.ref, MetricName: "s0-" + MetricName})
			a, aerr := c.IsActive(ctx, tt.ref)
			if tt.wantCode != codes.OK {
				for _, e := range []error{err, aerr} {
					if status.Code(e) != tt.wantCode || !strings.Contains(e.Error(), tt.wantSays) {
						t.Errorf("error %v, want %s saying %q", e, tt.wantCode, tt.wantSays)
					}
				}
				return
			}
			if err != nil || aerr != nil {
				t.Fatal(err, aerr)
			}
			v := m.MetricValues
			if len(v) != 1 || v[0].MetricName != "s0-"+MetricName || v[0].MetricValue != int64(tt.want) || v[0].MetricValueFloat != float64(tt.want) {
				t.Errorf("GetMetrics = %v, want s0-%s = %d (int and float)", m, MetricName, tt.want)
			}
			if a.Result != tt.wantActive {
				t.Errorf("IsActive = %v, want %v", a.Result, tt.wantActive)
			}
		})
	}

	stale = errors.New("cluster data 40s old")
	if _, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: ref("batch", "so", map[string]string{"scaler": "worker"})}); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "40s old") {
		t.Errorf("on stale data: %v, want Unavailable naming why", err)
	}
}

func TestStreamIsActiveSendsChanges(t *testing.T) {
	decisions := &fakeDecisions{desired: map[string]int32{"batch/worker": 4}}
	c := serve(t, &Scaler{Decisions: decisions, StreamInterval: 5 * time.Millisecond}, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.StreamIsActive(ctx, ref("batch", "so", map[string]string{"scaler": "worker"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, next := range []int32{0, 7, -1} {
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Result)
		if next >= 0 {
			decisions.set("batch/worker", next)
		}
	}
	// 4 (active), 0 (inactive), 7 (active): one message per change.
	if want := []bool{true, false, true}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("stream sent %v, want %v", got, want)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, "test CA", nil, nil, true)
	srv, srvKey := newCert(t, "opportunist", ca, caKey, false)
	cli, cliKey := newCert(t, "keda", ca, caKey, false)
	files := map[string][]byte{"ca.crt": pemCert(ca), "tls.crt": pemCert(srv), "tls.key": pemKey(t, srvKey)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	clientCert := tls.Certificate{Certificate: [][]byte{cli.Raw}, PrivateKey: cliKey}
	decisions := &fakeDecisions{desired: map[string]int32{"batch/worker": 9}}
	query := func(c pb.ExternalScalerClient) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: ref("batch", "so", map[string]string{"scaler": "worker"})})
		return err
	}

	tlsOnly := TLSOptions{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	creds, err := tlsOnly.ServerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if err := query(serve(t, &Scaler{Decisions: decisions}, creds, credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "opportunist"}))); err != nil {
		t.Errorf("over TLS (KEDA's enableTLS + caCert): %v", err)
	}

	mutual := tlsOnly
	mutual.ClientCAFile = filepath.Join(dir, "ca.crt")
	creds, err = mutual.ServerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, &Scaler{Decisions: decisions}, creds, credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "opportunist", Certificates: []tls.Certificate{clientCert}}))
	if err := query(c); err != nil {
		t.Errorf("with a client certificate (tlsClientCert, tlsClientKey): %v", err)
	}
	c = serve(t, &Scaler{Decisions: decisions}, creds, credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "opportunist"}))
	if err := query(c); err == nil {
		t.Error("a client without a certificate was served although the client CA is set")
	}

	for _, tt := range []struct {
		opts TLSOptions
		says string
	}{
		{TLSOptions{CertFile: tlsOnly.CertFile}, "give both"},
		{TLSOptions{ClientCAFile: mutual.ClientCAFile}, "needs --keda-scaler-tls-cert-file"},
		{TLSOptions{CertFile: tlsOnly.CertFile, KeyFile: tlsOnly.KeyFile, ClientCAFile: tlsOnly.KeyFile}, "holds no PEM certificate"},
		{TLSOptions{CertFile: filepath.Join(dir, "missing"), KeyFile: tlsOnly.KeyFile}, "loading the KEDA scaler's TLS certificate"},
	} {
		if _, err := tt.opts.ServerCredentials(); err == nil || !strings.Contains(err.Error(), tt.says) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: error %v, want one line saying %q", tt.opts, err, tt.says)
		}
	}
}

func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true, DNSNames: []string{cn},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
