// z = x + y, elementwise over a vector of $N elements.
builtin.module {
  func.func @add(%x: memref<${N}x${T}>, %y: memref<${N}x${T}>, %z: memref<${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    scf.for %i = %c0 to %n step %c1 {
      %a = memref.load %x[%i] : memref<${N}x${T}>
      %b = memref.load %y[%i] : memref<${N}x${T}>
      %s = arith.addf %a, %b : ${T}
      memref.store %s, %z[%i] : memref<${N}x${T}>
    }
    func.return
  }
}
