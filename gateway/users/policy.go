package users

import (
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Password length bounds, in characters and in bytes (the upper bound
// keeps what one login may make the hash chew on small).
const (
	MinPasswordChars = 10
	MaxPasswordBytes = 256
)

// common are passwords that attackers try first, as typed by Chinese and
// English speakers alike; a password containing one of them as its whole
// (case aside) is refused.
var common = map[string]bool{
	"1234567890": true, "12345678910": true, "123456789a": true, "a123456789": true, "1234567890a": true,
	"qwertyuiop": true, "1q2w3e4r5t": true, "password123": true, "password1234": true, "passw0rd123": true,
	"administrator": true, "admin123456": true, "woaini1314": true, "woaini5201314": true, "5201314520": true,
	"iloveyou123": true, "abcdefghij": true, "abc1234567": true, "aa123456789": true, "qwe1234567": true,
	"zxcvbnm123": true, "1qaz2wsx3edc": true, "shelterwatch": true, "shelterwatch1": true,
}

// CheckPassword says what is wrong with password for user name, in
// Chinese and English (an installer reads it at a terminal), or nil.
func CheckPassword(name, password string) error {
	switch {
	case !utf8.ValidString(password):
		return errors.New("密码不是有效的 UTF-8 文本 / the password is not valid UTF-8 text")
	case utf8.RuneCountInString(password) < MinPasswordChars:
		return fmt.Errorf("密码至少需要 %d 个字符 / the password must have at least %d characters", MinPasswordChars, MinPasswordChars)
	case len(password) > MaxPasswordBytes:
		return fmt.Errorf("密码不能超过 %d 字节 / the password must not be longer than %d bytes", MaxPasswordBytes, MaxPasswordBytes)
	case name != "" && strings.Contains(strings.ToLower(password), strings.ToLower(name)):
		return errors.New("密码不能包含用户名 / the password must not contain the user name")
	case common[strings.ToLower(password)]:
		return errors.New("这是常见密码，请换一个 / this is a common password; choose another")
	case oneRun(password):
		return errors.New("密码不能只是重复或连续的字符 / the password must not be one character repeated or a plain run such as 1234…")
	}
	return nil
}

// oneRun reports a password that is one character repeated or a run of
// consecutive characters (abcdef…, 987654…).
func oneRun(p string) bool {
	rs := []rune(p)
	same, up, down := true, true, true
	for i := 1; i < len(rs); i++ {
		same = same && rs[i] == rs[0]
		up = up && rs[i] == rs[i-1]+1
		down = down && rs[i] == rs[i-1]-1
	}
	return same || up || down
}

// generatedAlphabet leaves out characters that are easily misread when a
// password is read off a screen or dictated (0/O, 1/l/I).
const generatedAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GeneratePassword returns a random password of 16 characters (about 93
// bits), for `user add --generate` and the demo's printed logins.
func GeneratePassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("users: generate password: %w", err)
	}
	for i := range b {
		// 256 is not a multiple of the alphabet's 57: a slight bias, well
		// inside the bits a 16-character password has to spare.
		b[i] = generatedAlphabet[int(b[i])%len(generatedAlphabet)]
	}
	return string(b), nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,31}$`)

// CheckName says what is wrong with a user name, or nil: 2 to 32 of
// lower-case ASCII letters, digits, '.', '_' and '-', starting with a
// letter or digit (a login id; the person's own name goes in Display).
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("用户名 %q 无效：2–32 个小写字母、数字或 . _ -，以字母或数字开头 / user name %q is not valid: 2 to 32 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name, name)
	}
	return nil
}
