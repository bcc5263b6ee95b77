package main

// pki.go creates the throw-away certificate authority of the test cluster:
// the CA, the admin client certificate (O=system:masters), the serving
// certificate of kwok's kubelet-like server, and the service-account key.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the paths of every file the components read.
type pki struct {
	CACert, CAKey                    string
	AdminCert, AdminKey              string
	KubeletCert, KubeletKey          string
	ServingCert, ServingKey          string
	SAKey                            string
	caPEM, adminCertPEM, adminKeyPEM []byte
}

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func sign(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key, der: der}, nil
}

func writePair(dir, name string, kp *keyPair) (certPath, keyPath string, certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalECPrivateKey(kp.key)
	if err != nil {
		return "", "", nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		return "", "", nil, nil, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return "", "", nil, nil, err
	}
	return certPath, keyPath, certPEM, keyPEM, nil
}

// newPKI writes a fresh CA and the leaf certificates into dir.
func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour)
	ca, err := sign(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "dataworks-testcluster-ca"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	admin, err := sign(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return nil, fmt.Errorf("admin cert: %w", err)
	}
	kubelet, err := sign(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "kwok-kubelet"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}, ca)
	if err != nil {
		return nil, fmt.Errorf("kubelet cert: %w", err)
	}
	serving, err := sign(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}, ca)
	if err != nil {
		return nil, fmt.Errorf("apiserver cert: %w", err)
	}
	p := &pki{}
	if p.ServingCert, p.ServingKey, _, _, err = writePair(dir, "apiserver", serving); err != nil {
		return nil, err
	}
	if p.CACert, p.CAKey, p.caPEM, _, err = writePair(dir, "ca", ca); err != nil {
		return nil, err
	}
	if p.AdminCert, p.AdminKey, p.adminCertPEM, p.adminKeyPEM, err = writePair(dir, "admin", admin); err != nil {
		return nil, err
	}
	if p.KubeletCert, p.KubeletKey, _, _, err = writePair(dir, "kubelet", kubelet); err != nil {
		return nil, err
	}
	saKey, err := newKey()
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	p.SAKey = filepath.Join(dir, "sa.key")
	if err := os.WriteFile(p.SAKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}), 0o600); err != nil {
		return nil, err
	}
	return p, nil
}
