"""`pipeline-ctl completion bash|zsh` (edge layer): a completion script built from the parser.

source <(pipeline-ctl completion bash)
"""

from __future__ import annotations

import argparse


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
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}}
complete -F _pipeline_ctl pipeline-ctl
"""
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script
