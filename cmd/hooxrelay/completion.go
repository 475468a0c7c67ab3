package main

import (
	"github.com/spf13/cobra"
)

func newCompletionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "completion bash|zsh|fish",
		GroupID: groupOther,
		Short:   "print a shell completion script for bash, zsh or fish",
		Long: `Prints a script that completes hooxrelay's commands, flags and file names
in bash, zsh or fish. Load it in the current shell, or install it once:

  bash:  source <(hooxrelay completion bash)
         hooxrelay completion bash > /etc/bash_completion.d/hooxrelay
         (needs the bash-completion package)
  zsh:   source <(hooxrelay completion zsh)
         hooxrelay completion zsh > "${fpath[1]}/_hooxrelay"
  fish:  hooxrelay completion fish | source
         hooxrelay completion fish > ~/.config/fish/completions/hooxrelay.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh" && args[0] != "fish") {
				return usagef("completion needs one shell: bash, zsh or fish, got %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(e.stdout, true)
			case "zsh":
				return root.GenZshCompletion(e.stdout)
			}
			return root.GenFishCompletion(e.stdout, true)
		},
	}
}
