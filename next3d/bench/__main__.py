from next3d.bench import main

main()
