package runtime

import (
	"fmt"
	"reflect"
	"strconv"
)

// gob, which the listing cache is written in, keeps neither an empty slice
// or map apart from a nil one nor a pointer to a zero value apart from a nil
// pointer, where a record's JSON does ("Args": [] against null, a
// --stop-timeout of 0 against none, MaskedPaths empty for
// systempaths=unconfined against Docker's defaults). A record's shape is
// the paths to those of its slices, maps and pointers that gob would lose
// so: shapeOf takes it from a record read from its JSON, reshape gives it
// back to the same record decoded from gob. A path is a list of steps:
// "f<n>" the n-th field of a struct, "i<n>" the n-th element of a slice,
// "k<key>" the value of a map at key; a pointer is followed without a step.

// shapeOf returns the shape of the value v points to, or an error for a
// value it cannot walk (an interface, a map whose keys are not strings).
func shapeOf(v any) ([][]string, error) {
	var out [][]string
	err := walkShape(reflect.ValueOf(v).Elem(), nil, func(path []string) {
		out = append(out, append([]string(nil), path...))
	})
	return out, err
}

// walkShape calls lost with the path of each slice, map or pointer under v
// that is not nil and that gob would decode as nil.
func walkShape(v reflect.Value, path []string, lost func([]string)) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if v.Elem().IsZero() {
			lost(path)
			return nil
		}
		return walkShape(v.Elem(), path, lost)
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				if err := walkShape(v.Field(i), append(path, "f"+strconv.Itoa(i)), lost); err != nil {
					return err
				}
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		if v.Len() == 0 {
			lost(path)
		}
		for i := 0; i < v.Len(); i++ {
			if err := walkShape(v.Index(i), append(path, "i"+strconv.Itoa(i)), lost); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("a map keyed by %s", v.Type().Key())
		}
		if v.Len() == 0 {
			lost(path)
		}
		it := v.MapRange()
		for it.Next() {
			if err := walkShape(it.Value(), append(path, "k"+it.Key().String()), lost); err != nil {
				return err
			}
		}
	case reflect.Interface:
		return fmt.Errorf("an interface")
	}
	return nil
}

// reshape makes each slice, map or pointer shape names under the value v
// points to an empty slice, an empty map or a pointer to a zero value, where
// it is nil; it reports whether every path leads somewhere.
func reshape(v any, shape [][]string) bool {
	root := reflect.ValueOf(v).Elem()
	for _, path := range shape {
		if !restore(root, path) {
			return false
		}
	}
	return true
}

func restore(v reflect.Value, path []string) bool {
	for len(path) > 0 && v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if len(path) == 0 {
		if !v.CanSet() {
			return false
		}
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
		case reflect.Slice:
			if v.IsNil() {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
		case reflect.Map:
			if v.IsNil() {
				v.Set(reflect.MakeMap(v.Type()))
			}
		default:
			return false
		}
		return true
	}
	step, rest := path[0], path[1:]
	if step == "" {
		return false
	}
	switch n, err := strconv.Atoi(step[1:]); {
	case step[0] == 'f' && err == nil && v.Kind() == reflect.Struct && n >= 0 && n < v.NumField():
		return restore(v.Field(n), rest)
	case step[0] == 'i' && err == nil && v.Kind() == reflect.Slice && n >= 0 && n < v.Len():
		return restore(v.Index(n), rest)
	case step[0] == 'k' && v.Kind() == reflect.Map && !v.IsNil():
		// A map's values cannot be set in place: mend a copy, put it back.
		k := reflect.ValueOf(step[1:]).Convert(v.Type().Key())
		old := v.MapIndex(k)
		if !old.IsValid() {
			return false
		}
		e := reflect.New(v.Type().Elem()).Elem()
		e.Set(old)
		if !restore(e, rest) {
			return false
		}
		v.SetMapIndex(k, e)
		return true
	}
	return false
}
