package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/net/http2"
	"k8s.io/klog/v2"
)

// frontName names the group of `together` that serves k3r's supervisor
// listener (:6443) from kube-apiserver's process.
const frontName = "k3r-front"

// clientCertHeader carries, to k3r's own routes, the client certificate
// that the front verified against the client CA (base64 DER). The front
// drops any value a client sent.
const clientCertHeader = "X-K3r-Client-Certificate"

// front is the supervisor listener served as k3s serves it: the API
// server's handler in the same process, so an API request takes no hop.
// The paths k3r answers itself (the CA, /ping, the join endpoints, the
// agents' tunnel, k3r's metrics) go to the k3r server over a unix socket.
type front struct {
	listen    string
	certFile  string
	keyFile   string
	clientCA  string
	socket    string
	paths     []string
	prefixes  []string
	clientCAs *x509.CertPool
	cert      tls.Certificate
}

func parseFront(args []string) (*front, error) {
	f := &front{}
	fs := pflag.NewFlagSet(frontName, pflag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", "", "address:port to serve on")
	fs.StringVar(&f.certFile, "tls-cert-file", "", "serving certificate (PEM)")
	fs.StringVar(&f.keyFile, "tls-private-key-file", "", "serving key (PEM)")
	fs.StringVar(&f.clientCA, "client-ca-file", "", "CA whose client certificates k3r's routes are told about")
	fs.StringVar(&f.socket, "k3r-socket", "", "unix socket of the k3r server's own routes")
	fs.StringArrayVar(&f.paths, "path", nil, "a path the k3r server answers (repeatable)")
	fs.StringArrayVar(&f.prefixes, "prefix", nil, "a path prefix the k3r server answers (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	// In flag order, so that the same command line names the same flag.
	for _, name := range []string{"listen", "tls-cert-file", "tls-private-key-file", "client-ca-file", "k3r-socket"} {
		if value, _ := fs.GetString(name); value == "" {
			return nil, fmt.Errorf("--%s is required", name)
		}
	}
	pem, err := os.ReadFile(f.clientCA)
	if err != nil {
		return nil, err
	}
	f.clientCAs = x509.NewCertPool()
	if !f.clientCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", f.clientCA)
	}
	if f.cert, err = tls.LoadX509KeyPair(f.certFile, f.keyFile); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *front) ownsPath(path string) bool {
	for _, p := range f.paths {
		if path == p {
			return true
		}
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// verifiedClient is the client's certificate if the client CA signed it
// for client authentication.
func (f *front) verifiedClient(state *tls.ConnectionState) *x509.Certificate {
	if state == nil || len(state.PeerCertificates) == 0 {
		return nil
	}
	leaf := state.PeerCertificates[0]
	intermediates := x509.NewCertPool()
	for _, cert := range state.PeerCertificates[1:] {
		intermediates.AddCert(cert)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         f.clientCAs,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil
	}
	return leaf
}

// handler routes k3r's paths to the k3r server and the rest to api.
func (f *front) handler(api http.Handler) http.Handler {
	k3r := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "k3r"})
			r.SetXForwarded()
			r.Out.Header.Del(clientCertHeader)
			if leaf := f.verifiedClient(r.In.TLS); leaf != nil {
				r.Out.Header.Set(clientCertHeader, base64.StdEncoding.EncodeToString(leaf.Raw))
			}
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", f.socket)
			},
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
		// The join and tunnel answers are small or upgraded: no buffering.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			klog.V(2).InfoS("k3r server unreachable", "err", err)
			http.Error(w, "the k3r server is not available", http.StatusServiceUnavailable)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.ownsPath(r.URL.Path) {
			k3r.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// serve listens and serves until the process ends; a listener that
// cannot be had ends the process, so that its supervisor restarts it.
func (f *front) serve(api http.Handler) {
	listener, err := net.Listen("tcp", f.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3r-kube together: %s: %v\n", frontName, err)
		klog.Flush()
		os.Exit(1)
	}
	// As kube-apiserver's own secure serving: client certificates are
	// asked for, and its authenticator verifies them.
	tlsConfig := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		ClientAuth:   tls.RequestClientCert,
		Certificates: []tls.Certificate{f.cert},
	}
	server := &http.Server{
		ErrorLog:          log.New(quietHandshakes{}, "", 0),
		Handler:           f.handler(api),
		TLSConfig:         tlsConfig,
		MaxHeaderBytes:    1 << 20,
		IdleTimeout:       90 * time.Second,
		ReadHeaderTimeout: 32 * time.Second,
	}
	const frameSize = 256 << 10
	if err := http2.ConfigureServer(server, &http2.Server{
		IdleTimeout:                  90 * time.Second,
		MaxConcurrentStreams:         1000,
		MaxUploadBufferPerStream:     frameSize,
		MaxUploadBufferPerConnection: frameSize * 1000,
		MaxReadFrameSize:             frameSize,
	}); err != nil {
		fmt.Fprintf(os.Stderr, "k3r-kube together: %s: %v\n", frontName, err)
		os.Exit(1)
	}
	klog.InfoS("Serving the supervisor listener", "address", listener.Addr().String(), "k3rSocket", f.socket)
	err = server.Serve(tls.NewListener(listener, server.TLSConfig))
	fmt.Fprintf(os.Stderr, "k3r-kube together: %s stopped: %v\n", frontName, err)
	klog.Flush()
	os.Exit(1)
}

// quietHandshakes keeps failed TLS handshakes (port probes, clients that
// give up) out of the log unless asked for, as kube-apiserver's own
// serving does; the server's other errors stay visible.
type quietHandshakes struct{}

func (quietHandshakes) Write(p []byte) (int, error) {
	message := strings.TrimSpace(string(p))
	if strings.Contains(message, "http: TLS handshake error") {
		klog.V(4).Info(message)
	} else {
		klog.Warning(message)
	}
	return len(p), nil
}
