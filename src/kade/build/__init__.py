"""Dockerfile builds (row 5 of docs/ARCHITECTURE.md): imports only rows below it.

Built so far, each module about one thing:

    parser.py        Dockerfile text -> [Instruction], as BuildKit's parser does it:
                     directives (# syntax/escape/check), continuations, JSON vs shell
                     form, flags, heredocs; DockerfileError names file and line.
    shell.py         docker's shell lexer (BuildKit shell/lex.go): $VAR and ${VAR...}
                     substitution, quotes, escapes; process_word / process_words and
                     the names a word referenced (for cache keys).
    dockerignore.py  .dockerignore rules (moby/patternmatcher): read, Matcher.matches,
                     Matcher.can_skip_dir, and NAME.dockerignore lookup.

Still to come: instructions (typed, validated), the stage graph, steps and cache keys,
the build context (directory, tar on stdin), and the builder that drives the engine
through a narrow Protocol.
"""
