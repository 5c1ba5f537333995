package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, completionCommand) }

func completionCommand() *cli.Command {
	return &cli.Command{
		Name: "completion", Usage: "Output a shell completion script (bash, zsh or fish)", ArgsUsage: "bash|zsh|fish",
		Description: "Load it with, for bash: source <(cairn completion bash); for zsh: source <(cairn completion zsh);\n" +
			"for fish: cairn completion fish | source",
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 1 {
				return argsError(cliContext, "exactly 1 argument")
			}
			tree := completionTree(cliContext.App)
			w := cliContext.App.Writer
			switch shell := cliContext.Args().First(); shell {
			case "bash":
				writeBashCompletion(w, tree)
			case "zsh":
				writeZshCompletion(w, tree)
			case "fish":
				writeFishCompletion(w, tree)
			default:
				return usage("unsupported shell %q: bash, zsh or fish", shell)
			}
			return nil
		},
	}
}

// compNode is a command of the tree a completion script is made from: its
// path of canonical names ("" for cairn itself, "image ls"), what follows
// it, and what its arguments are.
type compNode struct {
	path     string
	usage    string
	children []compChild
	flags    []compFlag
	args     string // "container", "image", "network", "volume" or "" (files)
}

type compChild struct {
	names []string // name and aliases
	node  *compNode
}

type compFlag struct {
	names []string // "--all", "-a"
	usage string
	value bool // takes a value
}

// completionTree walks the app's commands, hidden ones left out.
func completionTree(app *cli.App) []*compNode {
	var all []*compNode
	root := &compNode{usage: app.Usage, flags: compFlags(app.Flags)}
	all = append(all, root)
	var walk func(parent *compNode, cmds []*cli.Command)
	walk = func(parent *compNode, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			n := &compNode{path: strings.TrimSpace(parent.path + " " + c.Name), usage: c.Usage, flags: compFlags(c.Flags), args: argsKind(c.ArgsUsage)}
			parent.children = append(parent.children, compChild{names: append([]string{c.Name}, c.Aliases...), node: n})
			all = append(all, n)
			walk(n, c.Subcommands)
		}
	}
	walk(root, app.Commands)
	return all
}

func compFlags(flags []cli.Flag) []compFlag {
	var out []compFlag
	for _, f := range flags {
		cf := compFlag{}
		for _, n := range f.Names() {
			if len(n) == 1 {
				cf.names = append(cf.names, "-"+n)
			} else {
				cf.names = append(cf.names, "--"+n)
			}
		}
		if df, ok := f.(cli.DocGenerationFlag); ok {
			cf.usage = df.GetUsage()
			cf.value = df.TakesValue()
		}
		out = append(out, cf)
	}
	// cli adds --help to every command.
	if !slices.ContainsFunc(out, func(f compFlag) bool { return slices.Contains(f.names, "--help") }) {
		out = append(out, compFlag{names: []string{"--help"}, usage: "show help"})
	}
	return out
}

// argsKind reads what a command's arguments are from its ArgsUsage.
func argsKind(argsUsage string) string {
	first := strings.TrimLeft(strings.Fields(argsUsage + " x")[0], "[")
	switch {
	case strings.HasPrefix(first, "CONTAINER"):
		return "container"
	case strings.HasPrefix(first, "IMAGE"), strings.HasPrefix(first, "SOURCE_IMAGE"), strings.HasPrefix(first, "NAME[:TAG"), strings.HasPrefix(first, "REPOSITORY"):
		return "image"
	case strings.HasPrefix(first, "NETWORK"):
		return "network"
	case strings.HasPrefix(first, "VOLUME"):
		return "volume"
	}
	return ""
}

// listCommands are the cairn commands that list the objects of a kind,
// one name a line, for the completion of arguments.
var listCommands = map[string]string{
	"container": "ps -a --format '{{.Names}}'",
	"image":     "images --format '{{.Repository}}:{{.Tag}}'",
	"network":   "network ls --format '{{.Name}}'",
	"volume":    "volume ls -q",
}

// shq quotes s for a POSIX shell, in single quotes.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fishq quotes s for fish, whose single quotes take \' and \\.
func fishq(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func flagNames(fs []compFlag, valued bool) string {
	var names []string
	for _, f := range fs {
		if !valued || f.value {
			names = append(names, f.names...)
		}
	}
	return strings.Join(names, " ")
}

func childNames(n *compNode) string {
	var names []string
	for _, c := range n.children {
		names = append(names, c.names...)
	}
	return strings.Join(names, " ")
}

// writeShCases writes, for bash and zsh, the functions both scripts walk
// the command line with: the child of a path, its flags, the flags that
// take a value, its subcommands and what its arguments are.
func writeShCases(w io.Writer, tree []*compNode) {
	fmt.Fprintln(w, "_cairn_child() {\n\tcase \"$1:$2\" in")
	for _, n := range tree {
		for _, c := range n.children {
			var pats []string
			for _, name := range c.names {
				pats = append(pats, shq(n.path+":"+name))
			}
			fmt.Fprintf(w, "\t%s) echo %s ;;\n", strings.Join(pats, "|"), shq(c.node.path))
		}
	}
	fmt.Fprintln(w, "\tesac\n}")
	for _, fn := range []struct {
		name string
		of   func(*compNode) string
	}{
		{"_cairn_flags", func(n *compNode) string { return flagNames(n.flags, false) }},
		{"_cairn_valued", func(n *compNode) string { return flagNames(n.flags, true) }},
		{"_cairn_subs", childNames},
		{"_cairn_args", func(n *compNode) string { return n.args }},
	} {
		fmt.Fprintf(w, "%s() {\n\tcase \"$1\" in\n", fn.name)
		for _, n := range tree {
			if v := fn.of(n); v != "" {
				fmt.Fprintf(w, "\t%s) echo %s ;;\n", shq(n.path), shq(v))
			}
		}
		fmt.Fprintln(w, "\tesac\n}")
	}
	fmt.Fprintln(w, "_cairn_list() {\n\tcase \"$1\" in")
	for _, kind := range sortedKindKeys() {
		fmt.Fprintf(w, "\t%s) shift; command cairn \"$@\" %s 2>/dev/null ;;\n", kind, listCommands[kind])
	}
	fmt.Fprintln(w, "\tesac\n}")
	// _cairn_walk sets cmdpath to the command the words before the current
	// one name, root to the --root given, and skip when the current word
	// is a flag's value.
	fmt.Fprint(w, `_cairn_walk() {
	cmdpath= skip= root=()
	local w child i=1
	while ((i < $#)); do
		w=${@:$i:1}
		((i++))
		if [[ -n $skip ]]; then
			[[ $skip == root ]] && root=(--root "$w")
			skip=
			continue
		fi
		case $w in
		--root=*) root=("$w"); continue ;;
		-*)
			if [[ $w != *=* && " $(_cairn_valued "$cmdpath") " == *" $w "* ]]; then
				skip=1
				[[ $w == --root && -z $cmdpath ]] && skip=root
			fi
			continue ;;
		esac
		child=$(_cairn_child "$cmdpath" "$w")
		[[ -z $child ]] && break
		cmdpath=$child
	done
}
`)
}

func sortedKindKeys() []string {
	keys := make([]string, 0, len(listCommands))
	for k := range listCommands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func writeBashCompletion(w io.Writer, tree []*compNode) {
	fmt.Fprintln(w, "# bash completion for cairn: source <(cairn completion bash)")
	writeShCases(w, tree)
	fmt.Fprint(w, `_cairn() {
	local cur=${COMP_WORDS[COMP_CWORD]} cmdpath skip root subs kind
	_cairn_walk "${COMP_WORDS[@]:1:COMP_CWORD}"
	if [[ -n $skip ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_cairn_flags "$cmdpath")" -- "$cur"))
		return
	fi
	subs=$(_cairn_subs "$cmdpath")
	if [[ -n $subs ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
		return
	fi
	kind=$(_cairn_args "$cmdpath")
	if [[ -n $kind ]]; then
		COMPREPLY=($(compgen -W "$(_cairn_list "$kind" "${root[@]}")" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -F _cairn cairn
`)
}

func writeZshCompletion(w io.Writer, tree []*compNode) {
	fmt.Fprintln(w, "#compdef cairn\n# zsh completion for cairn: source <(cairn completion zsh)")
	writeShCases(w, tree)
	// Descriptions for zsh's menus: "name:usage" per subcommand and flag.
	desc := func(s string) string { return strings.ReplaceAll(s, ":", `\:`) }
	fmt.Fprintln(w, "_cairn_described() {\n\tcase \"$1\" in")
	for _, n := range tree {
		var subs, flags []string
		for _, c := range n.children {
			for _, name := range c.names {
				subs = append(subs, shq(desc(name)+":"+desc(c.node.usage)))
			}
		}
		for _, f := range n.flags {
			for _, name := range f.names {
				flags = append(flags, shq(desc(name)+":"+desc(f.usage)))
			}
		}
		fmt.Fprintf(w, "\t%s) subs=(%s); flags=(%s) ;;\n", shq(n.path), strings.Join(subs, " "), strings.Join(flags, " "))
	}
	fmt.Fprintln(w, "\tesac\n}")
	fmt.Fprint(w, `_cairn() {
	local cmdpath skip kind
	local -a root subs flags
	_cairn_walk "${(@)words[2,CURRENT]}"
	if [[ -n $skip ]]; then
		_files
		return
	fi
	_cairn_described "$cmdpath"
	if [[ ${words[CURRENT]} == -* ]]; then
		_describe -t flags 'flag' flags
		return
	fi
	if (( ${#subs} )); then
		_describe -t commands 'command' subs
		return
	fi
	kind=$(_cairn_args "$cmdpath")
	if [[ -n $kind ]]; then
		compadd -- ${(f)"$(_cairn_list "$kind" "${root[@]}")"}
	else
		_files
	fi
}
compdef _cairn cairn
`)
}

func writeFishCompletion(w io.Writer, tree []*compNode) {
	fmt.Fprintln(w, "# fish completion for cairn: cairn completion fish | source")
	fmt.Fprintln(w, "function __cairn_child\n    switch \"$argv[1]:$argv[2]\"")
	for _, n := range tree {
		for _, c := range n.children {
			var pats []string
			for _, name := range c.names {
				pats = append(pats, fishq(n.path+":"+name))
			}
			fmt.Fprintf(w, "        case %s\n            echo %s\n", strings.Join(pats, " "), fishq(c.node.path))
		}
	}
	fmt.Fprintln(w, "    end\nend")
	fmt.Fprintln(w, "function __cairn_valued\n    switch \"$argv[1]\"")
	for _, n := range tree {
		if v := flagNames(n.flags, true); v != "" {
			fmt.Fprintf(w, "        case %s\n            string split ' ' -- %s\n", fishq(n.path), fishq(v))
		}
	}
	fmt.Fprintln(w, "    end\nend")
	fmt.Fprint(w, `function __cairn_path
    set -l words (commandline -opc)
    set -e words[1]
    set -l p ''
    set -l skip 0
    for w in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case '-*'
                if not string match -q -- '*=*' $w; and contains -- $w (__cairn_valued "$p")
                    set skip 1
                end
                continue
        end
        set -l c (__cairn_child "$p" $w)
        if test -z "$c"
            break
        end
        set p $c
    end
    echo $p
end
function __cairn_at
    set -l p (__cairn_path)
    test "$p" = "$argv[1]"
end
complete -c cairn -f
`)
	for _, n := range tree {
		cond := fishq("__cairn_at " + fishq(n.path))
		for _, c := range n.children {
			for _, name := range c.names {
				fmt.Fprintf(w, "complete -c cairn -n %s -a %s -d %s\n", cond, fishq(name), fishq(c.node.usage))
			}
		}
		for _, f := range n.flags {
			var opts []string
			for _, name := range f.names {
				if strings.HasPrefix(name, "--") {
					opts = append(opts, "-l "+fishq(name[2:]))
				} else {
					opts = append(opts, "-s "+fishq(name[1:]))
				}
			}
			if f.value {
				opts = append(opts, "-r")
			}
			fmt.Fprintf(w, "complete -c cairn -n %s %s -d %s\n", cond, strings.Join(opts, " "), fishq(f.usage))
		}
		switch {
		case n.args != "":
			fmt.Fprintf(w, "complete -c cairn -n %s -a %s\n", cond, fishq("(command cairn "+listCommands[n.args]+" 2>/dev/null)"))
		case len(n.children) == 0:
			fmt.Fprintf(w, "complete -c cairn -n %s -F\n", cond) // files
		}
	}
}
