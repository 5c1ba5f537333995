package image

import "encoding/json"

// marshalConfig encodes a config the way Docker writes one.
func marshalConfig(c Config) ([]byte, error) {
	return json.Marshal(c)
}
