# Sources declaration files and evaluates values as array words, printing NUL-separated records
# for test/helpers/bash.ts. Arguments: cwd, stderr file, number of files, files…, values…
# Variables of the harness start with __dt_ so that they cannot be mistaken for a file's.
__dt_emit() { printf '%s\0' "$@"; }
__dt_cwd=$1 __dt_stderr=$2 __dt_count=$3
shift 3
__dt_files=("${@:1:__dt_count}")
__dt_values=("${@:__dt_count+1}")
for __dt_file in "${__dt_files[@]}"; do
  (
    cd "$__dt_cwd" || exit 99
    mapfile -t __dt_before < <(compgen -v)
    source "$__dt_file" 2>"$__dt_stderr" >/dev/null
    __dt_status=$?
    mapfile -t __dt_after < <(compgen -v)
    __dt_emit "$__dt_status" "$(<"$__dt_stderr")" "${#__dt_before[@]}" "${__dt_before[@]}" "${#__dt_after[@]}"
    for __dt_name in "${__dt_after[@]}"; do
      __dt_attributes=${!__dt_name@a}
      if [[ $__dt_attributes == *A* ]]; then
        __dt_emit "$__dt_name" other "$__dt_attributes"
      elif [[ $__dt_attributes == *a* ]]; then
        eval "__dt_elements=(\"\${$__dt_name[@]}\"); __dt_keys=(\"\${!$__dt_name[@]}\")"
        __dt_dense=yes
        for __dt_index in "${!__dt_keys[@]}"; do
          [[ ${__dt_keys[__dt_index]} == "$__dt_index" ]] || __dt_dense=no
        done
        if [[ $__dt_dense == yes ]]; then
          __dt_emit "$__dt_name" array "${#__dt_elements[@]}" "${__dt_elements[@]}"
        else
          __dt_emit "$__dt_name" other sparse
        fi
      elif [[ -n ${!__dt_name+set} ]]; then
        __dt_emit "$__dt_name" string "${!__dt_name}"
      else
        __dt_emit "$__dt_name" unset
      fi
    done
    exit 0
  ) || __dt_emit "$?" "$(<"$__dt_stderr")" 0 0 # a syntax error ends the subshell before it reports
done
for __dt_value in "${__dt_values[@]}"; do
  (
    cd "$__dt_cwd" || exit 99
    if eval "__dt_words=( $__dt_value )" 2>/dev/null; then
      __dt_emit ok "${#__dt_words[@]}" "${__dt_words[@]}"
    else
      __dt_emit failed
    fi
  )
done
