package service

import "fmt"

// CheckSuperuser reports, without touching any store, whether
// EnsureSuperuser would refuse this email and password (the sign-up rules),
// naming the FIRST_SUPERUSER_* variable at fault; cmd/api's -check-config
// runs it.
func CheckSuperuser(email, password string) error {
	_, err := checkSuperuser(email, password)
	return err
}

// checkSuperuser validates the first superuser's credentials and returns
// the normalized email.
func checkSuperuser(email, password string) (string, error) {
	norm, ferr := normalizeEmail(email)
	if ferr != nil {
		return "", fmt.Errorf("FIRST_SUPERUSER_EMAIL: %s", ferr.Message)
	}
	if ferr := validatePassword(password); ferr != nil {
		return "", fmt.Errorf("FIRST_SUPERUSER_PASSWORD: %s", ferr.Message)
	}
	return norm, nil
}
