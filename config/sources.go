package config

import (
	"fmt"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// SourceEntry is one source as ReadSources reads it. Err holds the
// problems with its own values (such as an unset variable in its header);
// the fields that had none are set.
type SourceEntry struct {
	Source Source
	Err    error
}

// ReadSources returns the sources of the config in data with only their
// name, path and verify kind and header set: what a client needs to sign
// requests for a source. ${NAME} is expanded in those values alone, and a
// problem with one source's values is kept with it, so a client needs
// nothing of the environment but what the source it picks uses. The rest
// of the file is neither decoded nor checked. Errors are FieldErrors.
func ReadSources(data []byte, name string) ([]SourceEntry, error) {
	doc, err := parseYAML(data, name)
	if err != nil {
		return nil, err
	}
	var list *yaml.Node
	d := &decoder{file: name, lines: map[string]int{}, failed: map[*yaml.Node]bool{}, active: map[*yaml.Node]bool{}, merged: map[*yaml.Node][]pair{}}
	if doc != nil {
		for _, kv := range d.pairs(resolveAlias(doc.Content[0]), "") {
			if kv.key.Value == "sources" {
				list = resolveAlias(kv.value)
			}
		}
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, &FieldError{File: name, Path: "sources", Msg: "no list of sources in the file"}
	}
	var out []SourceEntry
	for i, item := range list.Content {
		p := fmt.Sprintf("sources[%d]", i)
		s := DefaultSource()
		d.errs = nil
		item = resolveAlias(item)
		if item.Kind != yaml.MappingNode {
			continue
		}
		for _, kv := range d.pairs(item, p) {
			switch kv.key.Value {
			case "name":
				d.leaf(kv.value, &s.Name, p+".name")
			case "path":
				d.leaf(kv.value, &s.Path, p+".path")
			case "verify":
				if v := resolveAlias(kv.value); v.Kind == yaml.MappingNode {
					for _, vkv := range d.pairs(v, p+".verify") {
						switch vkv.key.Value {
						case "kind":
							d.leaf(vkv.value, &s.Verify.Kind, p+".verify.kind")
						case "header":
							d.leaf(vkv.value, &s.Verify.Header, p+".verify.header")
						}
					}
				}
			}
		}
		out = append(out, SourceEntry{Source: s, Err: joinSorted(d.errs)})
	}
	return out, nil
}

// leaf decodes one string value after expanding ${NAME} in it.
func (d *decoder) leaf(n *yaml.Node, dst *string, path string) {
	n = resolveAlias(n)
	if isNull(n) {
		return
	}
	if n.Kind == yaml.ScalarNode {
		v, err := expand(n.Value, os.LookupEnv)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Line: n.Line}
	}
	d.decode(n, reflect.ValueOf(dst).Elem(), path)
}
