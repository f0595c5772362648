package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const probeTimeout = 2 * time.Second

// tlsConfig trusts the cluster CA and, if withClient, presents the admin
// certificate. It reads the files on each call so `status` needs no setup.
func (c *cluster) tlsConfig(withClient bool) (*tls.Config, error) {
	dir := filepath.Join(c.p.state, "pki")
	ca, err := loadKeyPair(dir, "ca")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if withClient {
		admin, err := tls.LoadX509KeyPair(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{admin}
	}
	return cfg, nil
}

// get fetches url and fails unless it answers 200.
func get(url string, tlsCfg *tls.Config) ([]byte, error) {
	client := &http.Client{
		Timeout:   probeTimeout,
		Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true},
	}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, firstLine(strings.TrimSpace(string(body))))
	}
	return body, nil
}

func etcdHealth(c *cluster) error {
	body, err := get(fmt.Sprintf("http://127.0.0.1:%d/health", c.s.EtcdPort), nil)
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("etcd /health: %v", err)
	}
	if h.Health != "true" {
		return fmt.Errorf("etcd /health: %s %s", h.Health, h.Reason)
	}
	return nil
}

func apiserverHealth(c *cluster) error {
	cfg, err := c.tlsConfig(true)
	if err != nil {
		return err
	}
	body, err := get(apiserverURL(c.s)+"/readyz", cfg)
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(body)); s != "ok" {
		return fmt.Errorf("/readyz: %s", s)
	}
	return nil
}

// secureHealthz probes /healthz of the controller-manager or scheduler. It
// is in their default --authorization-always-allow-paths; the admin
// certificate is presented anyway so it also passes delegated authn.
func secureHealthz(c *cluster, port int) error {
	cfg, err := c.tlsConfig(true)
	if err != nil {
		return err
	}
	_, err = get(fmt.Sprintf("https://127.0.0.1:%d/healthz", port), cfg)
	return err
}

func kwokHealth(c *cluster) error {
	_, err := get(fmt.Sprintf("http://127.0.0.1:%d/healthz", c.s.KwokPort), nil)
	return err
}

// waitHealthy polls comp until it is healthy, its process exits, or the
// timeout passes. Failures carry the tail of the component's log.
func waitHealthy(c *cluster, comp *component, r procRecord) error {
	deadline := time.Now().Add(comp.timeout)
	logPath := c.p.log(comp.name)
	for {
		if !r.alive() {
			return &detailedError{
				msg:    fmt.Sprintf("%s exited during startup; log: %s (last 20 lines below)", comp.binary, logPath),
				detail: tailFile(logPath, 20),
			}
		}
		err := comp.health(c)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return &detailedError{
				msg:    fmt.Sprintf("%s not healthy after %s (%v); log: %s (last 20 lines below)", comp.binary, comp.timeout, err, logPath),
				detail: tailFile(logPath, 20),
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tailFile returns the last n lines of a file, or a note why it cannot.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
