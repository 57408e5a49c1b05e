// RUN: raster-opt %s -p inline,canonicalize,inline --time-passes 2>&1 | filecheck %s
// --time-passes prints MLIR's timing report on stderr: one row per phase in the
// order they first ran (parse, importing the passes' modules -- a fresh process --,
// each pass run -- a repeated pass gets #2 --, verification after each, printing
// the output), then the total.

func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = raster.exp %x : tensor<4xf64>
  func.return %y : tensor<4xf64>
}

// CHECK:      ... Pass execution timing report ...
// CHECK:      Wall Time (s)   (%)   Name
// CHECK-NEXT: {{ +[0-9]+\.[0-9]{4} +[0-9]+\.[0-9]%  parse$}}
// CHECK-NEXT: {{ +[0-9]+\.[0-9]{4} +[0-9]+\.[0-9]%  verification \(4x\)$}}
// CHECK-NEXT: {{ +[0-9]+\.[0-9]{4} +[0-9]+\.[0-9]%  imports of the passes \(first compile of a process\)$}}
// CHECK-NEXT: {{ +[0-9]+\.[0-9]{4} +[0-9]+\.[0-9]%  inline$}}
// CHECK-NEXT: {{ +[0-9]+\.[0-9]{4} +[0-9]+\.[0-9]%  canonicalize$}}
// CHECK-NEXT: {{ +[0-9]+\.[0-9]{4} +[0-9]+\.[0-9]%  inline#2$}}
// CHECK-NEXT: {{ +[0-9]+\.[0-9]{4} +[0-9]+\.[0-9]%  output printing$}}
// CHECK-NEXT: {{ +[0-9]+\.[0-9]{4} +100\.0%  Total$}}
