"""SwapLab's virtual iPhone: the device side of usbmuxd, lockdownd and the services the iOS
backend uses (AFC, house_arrest, installation_proxy, DVT instruments, diagnostics_relay),
so the real pymobiledevice3 client code talks to it unchanged. See README.md."""
