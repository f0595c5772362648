package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// keyPair is a certificate with its private key, in parsed and PEM form.
type keyPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// certRequest describes a leaf certificate.
type certRequest struct {
	name   string // file base name in the pki dir
	cn     string
	orgs   []string
	dns    []string
	ips    []net.IP
	server bool
	client bool
}

// clusterPKI is every credential the cluster uses. Files are made once per
// state dir and reused, so kubeconfigs handed out earlier keep working
// across down/up.
type clusterPKI struct {
	ca, frontProxyCA                   *keyPair
	apiserver, frontProxyClient        *keyPair
	admin                              *keyPair
	controllerManager, scheduler       *keyPair // client identities
	controllerManagerTLS, schedulerTLS *keyPair // serving certs for their /healthz
}

func ensurePKI(p paths) (*clusterPKI, error) {
	dir := filepath.Join(p.state, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var pk clusterPKI
	var err error
	var caNew, fpNew bool
	if pk.ca, caNew, err = ensureCA(dir, "ca", "opportunist-ca"); err != nil {
		return nil, err
	}
	if pk.frontProxyCA, fpNew, err = ensureCA(dir, "front-proxy-ca", "opportunist-front-proxy-ca"); err != nil {
		return nil, err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	leaves := []struct {
		dst   **keyPair
		ca    *keyPair
		fresh bool // the CA is new, so certificates signed by an old one are stale
		req   certRequest
	}{
		{&pk.apiserver, pk.ca, caNew, certRequest{name: "apiserver", cn: "kube-apiserver", server: true,
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			ips: append(loopback, net.ParseIP(kubernetesSvcIP))}},
		{&pk.admin, pk.ca, caNew, certRequest{name: "admin", cn: "admin", orgs: []string{"system:masters"}, client: true}},
		{&pk.controllerManager, pk.ca, caNew, certRequest{name: "controller-manager", cn: "system:kube-controller-manager", client: true}},
		{&pk.scheduler, pk.ca, caNew, certRequest{name: "scheduler", cn: "system:kube-scheduler", client: true}},
		{&pk.controllerManagerTLS, pk.ca, caNew, certRequest{name: "controller-manager-serving", cn: "kube-controller-manager", server: true, dns: []string{"localhost"}, ips: loopback}},
		{&pk.schedulerTLS, pk.ca, caNew, certRequest{name: "scheduler-serving", cn: "kube-scheduler", server: true, dns: []string{"localhost"}, ips: loopback}},
		{&pk.frontProxyClient, pk.frontProxyCA, fpNew, certRequest{name: "front-proxy-client", cn: "front-proxy-client", client: true}},
	}
	for _, l := range leaves {
		if *l.dst, err = ensureLeaf(dir, l.ca, l.req, l.fresh); err != nil {
			return nil, err
		}
	}
	if err := ensureServiceAccountKey(dir); err != nil {
		return nil, err
	}
	return &pk, nil
}

// ensureCA loads dir/name.{crt,key} or makes a new self-signed CA there. It
// reports whether the CA is new.
func ensureCA(dir, name, cn string) (*keyPair, bool, error) {
	if kp, err := loadKeyPair(dir, name); err == nil {
		return kp, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	kp, err := issue(tmpl, nil, 10*365*24*time.Hour)
	if err != nil {
		return nil, false, err
	}
	return kp, true, saveKeyPair(dir, name, kp)
}

// ensureLeaf loads dir/<req.name>.{crt,key} unless force, or issues it
// from ca.
func ensureLeaf(dir string, ca *keyPair, req certRequest, force bool) (*keyPair, error) {
	if !force {
		kp, err := loadKeyPair(dir, req.name)
		if err == nil {
			return kp, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: req.cn, Organization: req.orgs},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:    req.dns,
		IPAddresses: req.ips,
	}
	if req.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	kp, err := issue(tmpl, ca, 5*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return kp, saveKeyPair(dir, req.name, kp)
}

// issue signs tmpl with a fresh P-256 key, by ca or self-signed if ca is nil.
func issue(tmpl *x509.Certificate, ca *keyPair, validity time.Duration) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	// Backdated a little so a clock that is slightly off still accepts it.
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(validity)
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func saveKeyPair(dir, name string, kp *keyPair) error {
	// Key first: a certificate without its key is never left behind.
	if err := writeFileAtomic(filepath.Join(dir, name+".key"), kp.keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, name+".crt"), kp.certPEM, 0o644)
}

func loadKeyPair(dir, name string) (*keyPair, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s: not PEM; delete %s.crt/.key to regenerate", filepath.Join(dir, name), name)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s.crt: %v", filepath.Join(dir, name), err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s.key: %v", filepath.Join(dir, name), err)
	}
	return &keyPair{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// ensureServiceAccountKey makes the key pair the API server signs service
// account tokens with (sa.key) and verifies them with (sa.pub).
func ensureServiceAccountKey(dir string) error {
	priv, pub := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if fileExists(priv) && fileExists(pub) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(priv, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFileAtomic writes via a temp file and rename, so a reader (or an
// interrupted run) never sees a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
