// SwapLab runner app: the runner's C++ core (swaplab_run, runner/src/swaplab.h) inside an iOS
// app, launched by the harness through DVT process control with launch arguments.
//
// Contract (runner/ios/README.md): arguments = [--swaplab-run-dir DIR] + swap_runner's own;
// the working directory is the app's Documents/ (models and inputs were pushed there through
// house_arrest); stdout and stderr go to DIR/stdout.txt and DIR/stderr.txt; telemetry to the
// --telemetry path (the harness passes DIR/telemetry.jsonl); when swaplab_run returns the app
// writes DIR/exit_status.json with the exit code and ProcessInfo.thermalState at start, worst
// and end, then exits. A crash leaves no exit_status.json: the harness reports it as one.
//
// The pipeline runs on a background queue after UIApplicationMain has finished launching:
// the launch watchdog kills an app whose main() does not reach the run loop in time.

#import <Foundation/Foundation.h>
#import <UIKit/UIKit.h>

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "run_contract.h"
#include "swaplab.h"

static std::atomic<int> g_worst_thermal{0};

static int current_thermal_state() {
    return (int)[[NSProcessInfo processInfo] thermalState];
}

static bool write_file_atomically(NSString* path, const std::string& text) {
    NSData* data = [NSData dataWithBytes:text.data() length:text.size()];
    return [data writeToFile:path atomically:YES];
}

// One run: returns swaplab_run's exit code (or 2 for unusable launch arguments).
static int run_pipeline(NSString* documents, const swaplab_ios::LaunchArgs& launch) {
    NSString* run_dir = [documents stringByAppendingPathComponent:
                         [NSString stringWithUTF8String:launch.run_dir.c_str()]];
    [[NSFileManager defaultManager] createDirectoryAtPath:run_dir withIntermediateDirectories:YES
                                               attributes:nil error:nil];
    freopen([[run_dir stringByAppendingPathComponent:@"stdout.txt"] fileSystemRepresentation],
            "w", stdout);
    freopen([[run_dir stringByAppendingPathComponent:@"stderr.txt"] fileSystemRepresentation],
            "w", stderr);
    setvbuf(stdout, nullptr, _IOLBF, 0);
    if (!launch.error.empty()) {
        fprintf(stderr, "swaplab app: error: %s\n", launch.error.c_str());
        return 2;
    }
    const int start = current_thermal_state();
    g_worst_thermal = start;
    // sample the thermal state while the pipeline runs (the worst one is reported)
    dispatch_source_t timer = dispatch_source_create(DISPATCH_SOURCE_TYPE_TIMER, 0, 0,
        dispatch_get_global_queue(QOS_CLASS_UTILITY, 0));
    dispatch_source_set_timer(timer, DISPATCH_TIME_NOW, 500 * NSEC_PER_MSEC, 50 * NSEC_PER_MSEC);
    dispatch_source_set_event_handler(timer, ^{
        int s = current_thermal_state();
        int w = g_worst_thermal.load();
        while (s > w && !g_worst_thermal.compare_exchange_weak(w, s)) {}
    });
    dispatch_resume(timer);

    std::vector<std::string> args = launch.runner_args;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int code = swaplab_run((int)args.size(), argv.data());

    dispatch_source_cancel(timer);
    fflush(stdout);
    fflush(stderr);
    const int end = current_thermal_state();
    const int worst = std::max(g_worst_thermal.load(), end);
    write_file_atomically([run_dir stringByAppendingPathComponent:@"exit_status.json"],
                          swaplab_ios::exit_status_json(code, start, worst, end));
    return code;
}

@interface SwapLabAppDelegate : UIResponder <UIApplicationDelegate>
@end

@implementation SwapLabAppDelegate
- (BOOL)application:(UIApplication*)application
    didFinishLaunchingWithOptions:(NSDictionary*)options {
    application.idleTimerDisabled = YES;  // auto-lock would suspend a long (sustained) run
    NSArray<NSString*>* all = [[NSProcessInfo processInfo] arguments];
    std::vector<std::string> args;
    for (NSUInteger i = 1; i < all.count; ++i) args.emplace_back(all[i].UTF8String);
    NSString* documents = NSSearchPathForDirectoriesInDomains(NSDocumentDirectory,
                                                              NSUserDomainMask, YES).firstObject;
    chdir(documents.fileSystemRepresentation);
    const swaplab_ios::LaunchArgs launch = swaplab_ios::parse_launch_args(args);
    dispatch_async(dispatch_get_global_queue(QOS_CLASS_USER_INITIATED, 0), ^{
        const int code = run_pipeline(documents, launch);
        exit(code);  // a measurement tool, not a user-facing app: done means done
    });
    return YES;
}
@end

int main(int argc, char* argv[]) {
    @autoreleasepool {
        return UIApplicationMain(argc, argv, nil, NSStringFromClass([SwapLabAppDelegate class]));
    }
}
