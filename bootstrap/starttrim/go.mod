module github.com/k3r-io/k3r/bootstrap/starttrim

go 1.26.0
