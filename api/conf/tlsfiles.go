package conf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadKeyPair reads a PEM certificate and its key, blaming the line that
// names the file that is wrong: certAt for an unreadable or bad
// certificate, keyAt for an unreadable key or one that does not match.
func LoadKeyPair(certFile, keyFile string, certAt, keyAt Entry) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, certAt.Errorf("cannot read certificate: %v", pathErr(err))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, keyAt.Errorf("cannot read key: %v", pathErr(err))
	}
	if err := checkCertPEM(certPEM); err != nil {
		return nil, certAt.Errorf("bad certificate %s: %v", certFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, keyAt.Errorf("certificate %s and key %s: %v", certFile, keyFile, err)
	}
	return &pair, nil
}

// LoadCertPool reads the PEM certificates of a CA file named at e.
func LoadCertPool(path string, e Entry) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, e.Errorf("cannot read CA file: %v", pathErr(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, e.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// checkCertPEM makes sure b holds at least one certificate and that every
// certificate in it parses.
func checkCertPEM(b []byte) error {
	n := 0
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM CERTIFICATE block")
	}
	return nil
}

// pathErr words a file error as "PATH: reason", without the operation.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
