from ser_core.cli import main

main()
