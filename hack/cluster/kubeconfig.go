package main

import (
	"encoding/base64"
	"fmt"
)

// kubeconfig renders a kubeconfig for one client certificate. Credentials
// are embedded, so the file keeps working when copied elsewhere.
func kubeconfig(server string, ca, client *keyPair) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: opportunist
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: opportunist
  context:
    cluster: opportunist
    user: %s
current-context: opportunist
`, server, b64(ca.certPEM), client.cert.Subject.CommonName, b64(client.certPEM), b64(client.keyPEM), client.cert.Subject.CommonName)
}

// writeKubeconfigs writes the admin kubeconfig (the one `env` exports) and
// one per control-plane component. They are rewritten on every start since
// they carry the API server port.
func writeKubeconfigs(p paths, s settings, pk *clusterPKI) error {
	server := fmt.Sprintf("https://127.0.0.1:%d", s.APIServerPort)
	files := []struct {
		path   string
		client *keyPair
	}{
		{p.kubeconfig(), pk.admin},
		{p.componentKubeconfig("controller-manager"), pk.controllerManager},
		{p.componentKubeconfig("scheduler"), pk.scheduler},
	}
	for _, f := range files {
		if err := writeFileAtomic(f.path, kubeconfig(server, pk.ca, f.client), 0o600); err != nil {
			return err
		}
	}
	return nil
}
