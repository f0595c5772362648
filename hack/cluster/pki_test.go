package main

import (
	"crypto/x509"
	"net"
	"testing"
)

func TestEnsurePKI(t *testing.T) {
	p := paths{state: t.TempDir()}
	pk, err := ensurePKI(p)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pk.ca.cert)
	for _, name := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc", kubernetesSvcIP} {
		if err := pk.apiserver.cert.VerifyHostname(name); err != nil {
			t.Errorf("apiserver cert: %v", err)
		}
	}
	if _, err := pk.apiserver.cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
		t.Errorf("apiserver cert does not chain to the CA: %v", err)
	}
	if _, err := pk.admin.cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin cert is no client cert of the CA: %v", err)
	}
	if got := pk.admin.cert.Subject.Organization; len(got) != 1 || got[0] != "system:masters" {
		t.Errorf("admin organisation %v", got)
	}
	fpRoots := x509.NewCertPool()
	fpRoots.AddCert(pk.frontProxyCA.cert)
	if _, err := pk.frontProxyClient.cert.Verify(x509.VerifyOptions{Roots: fpRoots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("front-proxy-client does not chain to the front-proxy CA: %v", err)
	}
	if !pk.schedulerTLS.cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("scheduler serving cert IPs %v", pk.schedulerTLS.cert.IPAddresses)
	}

	// A second run reuses every file.
	again, err := ensurePKI(p)
	if err != nil {
		t.Fatal(err)
	}
	if again.ca.cert.SerialNumber.Cmp(pk.ca.cert.SerialNumber) != 0 || again.admin.cert.SerialNumber.Cmp(pk.admin.cert.SerialNumber) != 0 {
		t.Error("certificates were regenerated on the second run")
	}
	if !fileExists(p.pki("sa.key")) || !fileExists(p.pki("sa.pub")) {
		t.Error("service account key pair missing")
	}
}
