package cli

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// listenError explains a failed bind; a busy address names the flag that moves it.
func listenError(flag, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s is already in use (another opportunist running?): stop it, or pass %s with a free address such as 127.0.0.1:0", addr, flag)
	}
	return fmt.Errorf("%s %s: %s", flag, addr, reason(err))
}

// reason shortens transport errors to their cause ("connection refused").
func reason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		var op *net.OpError
		if errors.As(ue.Err, &op) && op.Err != nil {
			return oneLine(op.Err)
		}
		return oneLine(ue.Err)
	}
	return oneLine(err)
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
