"""`pipeline-ctl completion bash|zsh` (edge layer): a completion script built from the parser.

source <(pipeline-ctl completion bash)
"""

from __future__ import annotations

import argparse

# Verbs whose first argument is a pipeline name.
NAMED = ["cancel", "delete", "describe", "logs", "resume", "retry", "status", "suspend"]


def script(root: argparse.ArgumentParser, shell: str) -> str:
    """A completion script generated from the parser itself, so it never falls out of date."""
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    verbs = sorted(sub.choices)
    cases = []
    for verb, p in sorted(sub.choices.items()):
        flags = sorted(o for a in p._actions for o in a.option_strings if o.startswith("--"))
        cases.append(f'    {verb}) opts="{" ".join(flags)}" ;;')
    body = "\n".join(cases)
    script = f"""_pipeline_ctl() {{
  local cur verb opts
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  verb="${{COMP_WORDS[1]}}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "{" ".join(verbs)}" -- "$cur") ); return
  fi
  case "$verb" in
{body}
    *) opts="" ;;
  esac
  local prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  elif [ "$prev" = "--step" ]; then
    COMPREPLY=( $(compgen -W "$(pipeline-ctl status "${{COMP_WORDS[2]}}" -o name 2>/dev/null)" -- "$cur") )
  elif [[ " {" ".join(NAMED)} " == *" $verb "* ]] && [ "$COMP_CWORD" -eq 2 ]; then
    COMPREPLY=( $(compgen -W "$(pipeline-ctl status -o name 2>/dev/null)" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}}
complete -F _pipeline_ctl pipeline-ctl
complete -F _pipeline_ctl dataworks
"""
    if shell == "fish":
        return fish(verbs, sub.choices)
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script


def fish(verbs: list[str], parsers: dict[str, argparse.ArgumentParser]) -> str:
    lines = [
        "complete -c pipeline-ctl -f",
        f"complete -c pipeline-ctl -n __fish_use_subcommand -a '{' '.join(verbs)}'",
        f"complete -c pipeline-ctl -n '__fish_seen_subcommand_from {' '.join(NAMED)}' "
        "-a '(pipeline-ctl status -o name 2>/dev/null)'",
    ]
    for verb, p in sorted(parsers.items()):
        for action in p._actions:
            for option in action.option_strings:
                if option.startswith("--"):
                    lines.append(
                        f"complete -c pipeline-ctl -n '__fish_seen_subcommand_from {verb}' -l {option[2:]}"
                    )
    return "\n".join(lines) + "\n"
