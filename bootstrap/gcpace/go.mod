module github.com/k3r-io/k3r/bootstrap/gcpace

go 1.26.0
