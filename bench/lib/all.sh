# Every shared benchmark helper at once (sourced, not run): set HERE to the bench folder first. Sets ROOT (the
# repository) and puts its node_modules/.bin first on PATH.
ROOT=$(dirname "$HERE")
export PATH="$ROOT/node_modules/.bin:$PATH"
# shellcheck source=proc.sh
source "$HERE/lib/proc.sh"
# shellcheck source=net.sh
source "$HERE/lib/net.sh"
# shellcheck source=sipp.sh
source "$HERE/lib/sipp.sh"
# shellcheck source=run.sh
source "$HERE/lib/run.sh"
# shellcheck source=m1node.sh
source "$HERE/lib/m1node.sh"
