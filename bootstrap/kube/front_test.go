package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

func certificate(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"system:nodes"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  ca,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestFrontRoutesK3rPathsAndPassesOnlyVerifiedCertificates(t *testing.T) {
	ca, caKey := certificate(t, "client-ca", nil, nil, true)
	other, otherKey := certificate(t, "other-ca", nil, nil, true)
	node, _ := certificate(t, "system:node:a", ca, caKey, false)
	stranger, _ := certificate(t, "system:node:b", other, otherKey, false)

	socket := filepath.Join(t.TempDir(), "k3r.sock")
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 1)
	k3r := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get(clientCertHeader)
		w.Write([]byte("k3r:" + r.URL.Path))
	})}
	go k3r.Serve(listener)
	defer k3r.Close()

	f := &front{socket: socket, paths: []string{"/cacerts"}, prefixes: []string{"/v1-k3r/"}, clientCAs: x509.NewCertPool()}
	f.clientCAs.AddCert(ca)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("api:" + r.URL.Path)) })
	handler := f.handler(api)

	for _, c := range []struct {
		path    string
		peer    *x509.Certificate
		claimed string
		body    string
		header  string
	}{
		{path: "/api/v1/nodes", body: "api:/api/v1/nodes"},
		{path: "/cacertsx", body: "api:/cacertsx"},
		{path: "/cacerts", body: "k3r:/cacerts"},
		{path: "/v1-k3r/connect", peer: node, body: "k3r:/v1-k3r/connect", header: base64.StdEncoding.EncodeToString(node.Raw)},
		{path: "/v1-k3r/connect", peer: stranger, body: "k3r:/v1-k3r/connect"},
		{path: "/v1-k3r/connect", claimed: base64.StdEncoding.EncodeToString(node.Raw), body: "k3r:/v1-k3r/connect"},
	} {
		req := httptest.NewRequest("GET", "https://k3r"+c.path, nil)
		req.TLS = &tls.ConnectionState{}
		if c.peer != nil {
			req.TLS.PeerCertificates = []*x509.Certificate{c.peer}
		}
		if c.claimed != "" {
			req.Header.Set(clientCertHeader, c.claimed)
		}
		recorder := httptest.NewRecorder()
		handler.ServeHTTP(recorder, req)
		if got := recorder.Body.String(); got != c.body {
			t.Errorf("%s: answered %q, want %q", c.path, got, c.body)
		}
		if c.body[:4] != "k3r:" {
			continue
		}
		if got := <-seen; got != c.header {
			t.Errorf("%s (peer %v, claimed %t): k3r saw certificate header %q, want %q", c.path, c.peer != nil, c.claimed != "", got, c.header)
		}
	}
}

func TestFrontAnswersUnavailableWithoutTheK3rServer(t *testing.T) {
	f := &front{socket: filepath.Join(t.TempDir(), "absent.sock"), paths: []string{"/ping"}, clientCAs: x509.NewCertPool()}
	recorder := httptest.NewRecorder()
	f.handler(http.NotFoundHandler()).ServeHTTP(recorder, httptest.NewRequest("GET", "https://k3r/ping", nil))
	if recorder.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", recorder.Code)
	}
}

func TestParseFrontNamesAMissingFlag(t *testing.T) {
	_, err := parseFront([]string{"--listen=:6443"})
	if err == nil {
		t.Fatal("no error without the certificate flags")
	}
}
