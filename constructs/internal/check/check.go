// Package check formats configuration errors the same way everywhere: one line
// that names the setting, the value received and what is allowed.
package check

import "fmt"

// Error is a setting that holds a value it may not hold.
type Error struct {
	Setting string
	Value   any
	Allowed string
}

func (e *Error) Error() string {
	v := e.Value
	if s, ok := v.(string); ok {
		v = fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%s: invalid value %v; allowed: %s", e.Setting, v, e.Allowed)
}

// Invalid returns an *Error.
func Invalid(setting string, value any, allowed string) error {
	return &Error{Setting: setting, Value: value, Allowed: allowed}
}

// IntRange accepts min <= v <= max.
func IntRange(setting string, v, min, max int) error {
	if v < min || v > max {
		return Invalid(setting, v, fmt.Sprintf("an integer from %d to %d", min, max))
	}
	return nil
}

// OneOf accepts v when it is one of allowed.
func OneOf(setting, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return Invalid(setting, v, fmt.Sprintf("one of %q", allowed))
}
