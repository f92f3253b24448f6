from next3d.cli import main

main()
