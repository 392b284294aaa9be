module github.com/k3r-io/k3r/bootstrap/idlepace

go 1.26.0
