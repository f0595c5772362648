package sim

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// FileError is one problem in an input file, located by line and field.
type FileError struct {
	File  string
	Line  int
	Field string // e.g. paid[1].requests.cpu; empty for the whole file
	Msg   string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// FileErrors are all the problems found in one file, in file order.
type FileErrors []*FileError

func (es FileErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// errs collects problems while a file is read; nothing runs unless it stays empty.
type errs struct {
	file string
	list FileErrors
}

func (c *errs) add(line int, field, format string, args ...any) {
	c.list = append(c.list, &FileError{File: c.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	slices.SortStableFunc(c.list, func(a, b *FileError) int { return a.Line - b.Line })
	return c.list
}

// pos records where a YAML mapping and its keys were, for checks made
// after decoding.
type pos struct {
	line   int
	path   string
	fields map[string]int // line of each key
}

// at is the line of a field of the mapping, or of the mapping when the field
// is absent. For "allocatable.cpu" it is the line of allocatable.
func (p pos) at(field string) int {
	first, _, _ := strings.Cut(field, ".")
	if l, ok := p.fields[first]; ok {
		return l
	}
	return p.line
}

// field reports a problem with one field of a mapping.
func (c *errs) field(p pos, name, format string, args ...any) {
	c.add(p.at(name), join(p.path, name), format, args...)
}

// fieldAt reports a problem with one field of a mapping whose path is given
// (the HPA settings, decoded under a path of their own).
func (c *errs) fieldAt(p pos, path, name, format string, args ...any) {
	c.add(p.at(name), path+"."+name, format, args...)
}

// positioned is implemented by the structs that embed pos.
type positioned interface{ setPos(pos) }

func (p *pos) setPos(at pos) { *p = at }

// scalar is implemented by leaf types that parse themselves from one YAML
// scalar (quantities, durations, headroom values).
type scalar interface {
	fromYAML(n *yaml.Node) error
}

var scalarType = reflect.TypeFor[scalar]()

// nodeDecoder is implemented by types that take more than one YAML form
// (priorityClasses: true, or a list).
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var nodeDecoderType = reflect.TypeFor[nodeDecoder]()

// rawYAML keeps a YAML subtree undecoded, for what has a decoder of its own
// (a Kubernetes object) or only needs an error where it is.
type rawYAML struct{ node *yaml.Node }

// decodeYAML reads data into out (a pointer to a struct) strictly: unknown
// fields, duplicate keys and wrong types are errors naming the line and the
// field. It reports every problem it finds, not only the first.
func decodeYAML(c *errs, data []byte, out any) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, found := strings.Cut(rest, ": "); found {
				if v, err := strconv.Atoi(n); err == nil {
					line, msg = v, after
				}
			}
		}
		c.add(line, "", "not valid YAML: %s", msg)
		return
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		c.add(0, "", "the file is empty")
		return
	}
	d := decoder{c: c}
	d.decode(doc.Content[0], reflect.ValueOf(out).Elem(), "")
}

type decoder struct{ c *errs }

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent: the zero value
	}
	if v.CanAddr() {
		if r, ok := v.Addr().Interface().(*rawYAML); ok {
			r.node = n
			return
		}
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(scalarType) {
		if n.Kind != yaml.ScalarNode {
			d.c.add(n.Line, path, "want a single value, got %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(scalar).fromYAML(n); err != nil {
			d.c.add(n.Line, path, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.c.add(n.Line, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.c.add(n.Line, path, "want a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			field := join(path, k.Value)
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.c.add(k.Line, field, "duplicate key")
				continue
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, elem, field)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		}
		v.Set(m)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.c.add(n.Line, path, "want a mapping, got %s", kindName(n))
		return
	}
	at := pos{line: n.Line, path: path, fields: map[string]int{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		at.fields[n.Content[i].Value] = n.Content[i].Line
	}
	if p, ok := v.Addr().Interface().(positioned); ok {
		p.setPos(at)
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opt, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		if opt != "gone" { // a field kept only to say where it went is not offered
			names = append(names, name)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		field := join(path, k.Value)
		idx, ok := fields[k.Value]
		switch {
		case !ok:
			d.c.add(k.Line, field, "unknown field (known: %s)", strings.Join(names, ", "))
		case seen[k.Value]:
			d.c.add(k.Line, field, "duplicate key")
		default:
			seen[k.Value] = true
			d.decode(val, v.Field(idx), field)
		}
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.c.add(n.Line, path, "want a single value, got %s", kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.ShortTag() != "!!bool" {
			d.c.add(n.Line, path, "%q is not true or false", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, v.Type().Bits())
		if err != nil {
			d.c.add(n.Line, path, "%q is not a whole number", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.c.add(n.Line, path, "%q is not a number", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("sim: cannot decode YAML into %s", v.Type())) // a programming error
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("%q", n.Value)
}

// quantity is a Kubernetes quantity ("4", "500m", "80Gi").
type quantity struct {
	resource.Quantity
	line int
	text string // as written
}

func (q *quantity) fromYAML(n *yaml.Node) error {
	v, err := resource.ParseQuantity(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a quantity (like 4, 500m or 80Gi)", n.Value)
	}
	if v.Sign() < 0 {
		return fmt.Errorf("%q is negative", n.Value)
	}
	q.Quantity, q.line, q.text = v, n.Line, n.Value
	return nil
}

// duration is a time span: a Go duration ("90s", "1h30m") or a number of seconds.
type duration struct {
	time.Duration
	set bool
}

func (d *duration) fromYAML(n *yaml.Node) error {
	if secs, err := strconv.ParseFloat(n.Value, 64); err == nil {
		// Reject what a time.Duration cannot hold before converting: the
		// conversion of NaN, Inf or 1e300 is platform-defined.
		if !(secs >= 0 && secs <= math.MaxInt64/float64(time.Second)) {
			return fmt.Errorf("%q is not a duration between 0 and 292 years", n.Value)
		}
		d.Duration = time.Duration(secs * float64(time.Second))
	} else if v, err := time.ParseDuration(n.Value); err == nil {
		d.Duration = v
	} else {
		return fmt.Errorf("%q is not a duration (like 90s, 30m, 1h30m, or a number of seconds)", n.Value)
	}
	if d.Duration < 0 {
		return fmt.Errorf("%q is negative", n.Value)
	}
	d.set = true
	return nil
}

// or returns the duration, or def when it was not given.
func (d duration) or(def time.Duration) time.Duration {
	if d.set {
		return d.Duration
	}
	return def
}

// slotCount is a headroom slot's count: a whole number ("auto" is the
// controller's to learn, not the simulator's).
type slotCount int32

func (c *slotCount) fromYAML(n *yaml.Node) error {
	if n.Value == "auto" {
		// As for "auto" headroom: learned from the pool's recorded history
		// of paid pods, which a scenario does not have. (1: one error, not
		// a second one about the range.)
		*c = 1
		return fmt.Errorf("\"auto\" slot count is learned by the controller from its history of paid pods, not simulated: give a number of pods (1 to %d)", maxSlotCount)
	}
	i, err := strconv.ParseInt(n.Value, 10, 32)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", n.Value)
	}
	*c = slotCount(i)
	return nil
}

// headroomValue is a quantity ("30") or a percent of allocatable ("15%").
type headroomValue struct {
	quantity *resource.Quantity
	percent  float64
	line     int
}

func (h *headroomValue) fromYAML(n *yaml.Node) error {
	h.line = n.Line
	if n.Value == "auto" {
		// The controller learns it from the pool's recorded demand; a
		// scenario states the headroom it wants simulated.
		return fmt.Errorf("\"auto\" headroom is learned by the controller from its demand history, not simulated: give a quantity (30, 64Gi) or a percent (15%%)")
	}
	if pct, ok := strings.CutSuffix(n.Value, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || !(f >= 0 && f <= 100) { // written so that NaN fails too
			return fmt.Errorf("%q is not a percent between 0%% and 100%%", n.Value)
		}
		h.percent = f
		return nil
	}
	q, err := resource.ParseQuantity(n.Value)
	if err != nil {
		return fmt.Errorf("%q is neither a quantity (30, 64Gi) nor a percent (15%%)", n.Value)
	}
	if q.Sign() < 0 {
		return fmt.Errorf("%q is negative", n.Value)
	}
	h.quantity = &q
	return nil
}
