// swap_runner: the command line of the runner core (swaplab.h; CLI in runner/README.md).
#include "swaplab.h"

int main(int argc, char** argv) { return swaplab_run(argc, argv); }
