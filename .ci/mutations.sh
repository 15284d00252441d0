#!/usr/bin/env bash
# make test-mutations: break each isolation mechanism on purpose and check that
# the tests meant to guard it fail.
#
# Every mutations/NN-name.patch starts with a header, then a unified diff:
#   Mutation:  what is broken
#   Invariant: the docs/security.md invariants it attacks ("threat" for the threat table)
#   Attacks:   what goes wrong for users when it ships
#   Packages:  the packages holding the tests below
#   Kills:     tests that must each FAIL under the mutation
#   ---
# Each patch is applied to a scratch copy of the working tree (never to the
# tree itself), the Kills tests run, and the copy is restored. The target
# fails when a patch does not apply (the code it mutates has moved: update the
# patch), when the mutated code does not build, or when any listed test passes
# (the mutant survived it). Before any mutation, every listed test must pass
# on the unmutated copy.
#
# Environment: MUTATION_JOBS (1 or 2, default 1); MUTATIONS (only the patches
# whose file name matches this extended regular expression); MUTATION_DISCOVER=1
# (run the whole Packages instead of Kills and list every failing test: to
# choose the Kills of a new mutation); MUTATION_LOGS (keep the logs there;
# default a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${MUTATION_JOBS:-1}
work=$(mktemp -d)
logs=${MUTATION_LOGS:-$work/logs}
mkdir -p "$logs"
trap 'rm -rf "$work"' EXIT
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

field() { sed -n "/^---\$/q;s/^$2: *//p" "$1"; }

patches=()
for p in "$root"/mutations/*.patch; do
	[[ $(basename "$p") =~ ${MUTATIONS:-.} ]] && patches+=("$p")
done
if [ ${#patches[@]} -eq 0 ]; then
	echo "no mutations/*.patch${MUTATIONS:+ matching $MUTATIONS}" >&2
	exit 1
fi
for p in "${patches[@]}"; do
	for f in Mutation Invariant Packages Kills; do
		if [ -z "$(field "$p" $f)" ]; then
			echo "$(basename "$p"): header has no $f:" >&2
			exit 1
		fi
	done
done

# scratch DIR: a copy of the working tree (tracked and untracked, not ignored).
scratch() {
	mkdir -p "$1"
	git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$1"
	git -C "$1" init -q # git apply works inside it, never on the real tree
}

# anchored -run pattern of a space-separated list of tests
pattern() { echo "^($(echo "$1" | tr -s ' ' '|'))\$"; }

# No failure is an answer (a survivor), not an error: grep's exit 1 must not end the worker.
failed_tests() { { grep -oE '^\s*--- FAIL: [A-Za-z0-9_]+' "$1" || true; } | awk '{print $3}' | sort -u | tr '\n' ' '; }

# run_one PATCH DIR: appends "name|invariant|status|failed tests|detail" to DIR.results.
run_one() {
	local patch=$1 dir=$2 name log kills pkgs run status detail failed missing=""
	name=$(basename "$patch" .patch)
	log=$logs/$name.log
	kills=$(field "$patch" Kills)
	pkgs=$(field "$patch" Packages)
	if ! (cd "$dir" && git apply --check "$patch") >"$log" 2>&1; then
		echo "$name|$(field "$patch" Invariant)|STALE||does not apply: $(grep -m2 error: "$log" | tr '\n' ' ')" >>"$dir.results"
		return
	fi
	(cd "$dir" && git apply "$patch")
	run=(-run "$(pattern "$kills")")
	[ "${MUTATION_DISCOVER:-}" = 1 ] && run=()
	# shellcheck disable=SC2086 # pkgs is a list
	(cd "$dir" && go test -count=1 -timeout 10m "${run[@]}" $pkgs) >>"$log" 2>&1 && rc=0 || rc=$?
	(cd "$dir" && git apply -R "$patch")
	failed=$(failed_tests "$log")
	for k in $kills; do
		case " $failed " in *" $k "*) ;; *) missing="$missing $k" ;; esac
	done
	if grep -qE '\[(build|setup) failed\]' "$log"; then
		status=BROKEN detail="the mutated code does not build: fix the patch ($log)"
	elif [ -z "$failed" ] && [ "$rc" -ne 0 ]; then
		status=ERROR detail="go test failed without a failing test ($log)"
	elif [ -z "$failed" ]; then
		status=SURVIVED detail="every test passed:$kills"
	elif [ -n "$missing" ]; then
		status=PARTIAL detail="these listed tests passed under the mutation:$missing"
	else
		status=KILLED detail=""
	fi
	echo "$name|$(field "$patch" Invariant)|$status|$failed|$detail" >>"$dir.results"
}

start=$(date +%s)
echo "baseline: every listed test passes on the unmutated tree"
scratch "$work/s0"
all_kills=$(for p in "${patches[@]}"; do field "$p" Kills; done | tr ' ' '\n' | sort -u | tr '\n' ' ')
all_pkgs=$(for p in "${patches[@]}"; do field "$p" Packages; done | tr ' ' '\n' | sort -u | tr '\n' ' ')
# shellcheck disable=SC2086
if ! (cd "$work/s0" && go test -count=1 -timeout 20m -run "$(pattern "$all_kills")" $all_pkgs) >"$logs/baseline.log" 2>&1; then
	echo "baseline failed: a listed test fails without any mutation:" >&2
	grep -E -- '--- FAIL|FAIL|error' "$logs/baseline.log" | head -40 >&2
	exit 1
fi

for ((w = 0; w < jobs; w++)); do
	[ -d "$work/s$w" ] || scratch "$work/s$w"
	: >"$work/s$w.results"
	(
		for ((i = w; i < ${#patches[@]}; i += jobs)); do
			run_one "${patches[$i]}" "$work/s$w"
			tail -n1 "$work/s$w.results" | awk -F'|' '{printf "  %-45s %s\n", $1, $3}'
		done
	) &
done
wait

echo
printf '%-45s %-9s %-9s %s\n' mutation invariant result "killed by / why not"
bad=0
while IFS='|' read -r name inv status failed detail; do
	printf '%-45s %-9s %-9s %s\n' "$name" "$inv" "$status" "${failed:-$detail}"
	if [ "$status" != KILLED ]; then
		bad=$((bad + 1))
		[ -n "$failed" ] && printf '%-45s %-9s %-9s %s\n' "" "" "" "$detail"
	fi
done < <(sort "$work"/s*.results)
echo
echo "${#patches[@]} mutations, $bad not killed, $(($(date +%s) - start)) s (logs: $logs)"
if [ "$bad" -ne 0 ]; then
	[ -z "${MUTATION_LOGS:-}" ] && for f in "$logs"/*.log; do
		n=$(basename "$f" .log)
		grep -q "^$n|.*|KILLED|" "$work"/s*.results 2>/dev/null && continue
		[ "$n" = baseline ] && continue
		echo "--- $n"
		tail -n 30 "$f"
	done
	exit 1
fi
