package main

import (
	"net"
	"strconv"
)

// portFree reports whether 127.0.0.1:port can be listened on. Binding, not
// dialling, is the test: it also catches a listener on 0.0.0.0 or [::] and
// one that does not accept connections.
func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}
