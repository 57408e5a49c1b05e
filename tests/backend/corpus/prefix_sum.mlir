// y = cumsum(x): iteration i reads what iteration i-1 stored, a loop-carried
// dependence through memory that no vectoriser may break.
builtin.module {
  func.func @cumsum(%x: memref<${N}x${T}>, %y: memref<${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    %first = memref.load %x[%c0] : memref<${N}x${T}>
    memref.store %first, %y[%c0] : memref<${N}x${T}>
    scf.for %i = %c1 to %n step %c1 {
      %prev = arith.subi %i, %c1 : index
      %p = memref.load %y[%prev] : memref<${N}x${T}>
      %v = memref.load %x[%i] : memref<${N}x${T}>
      %s = arith.addf %p, %v : ${T}
      memref.store %s, %y[%i] : memref<${N}x${T}>
    }
    func.return
  }
}
